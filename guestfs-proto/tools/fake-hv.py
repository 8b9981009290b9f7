#!/usr/bin/env python3
"""A fake hypervisor for libguestfs (LIBGUESTFS_HV): records the protocol without booting.

libguestfs (direct backend) first probes its hypervisor (`-help`, `-version`,
`-machine accel=kvm:tcg -device ?`, `-qmp stdio` ...) and then launches the appliance with
`-chardev socket,path=SOCK,id=channel0` + `virtserialport ... name=org.libguestfs.channel.0`.
This script passes every probing invocation to the real QEMU and, for the launch, runs
guestfs-proto's fake daemon (examples/fake_guestfsd.rs) on SOCK instead of a VM: it sends the
launch flag, answers every call from a small fake Debian guest and logs each call and reply.

Use (from the workspace root):

    cargo build -p guestfs-proto --features std --example fake_guestfsd
    guestfs-proto/tools/make-fixed-appliance.sh /tmp/fakeapp
    truncate -s 10M /tmp/disk.img
    LIBGUESTFS_BACKEND=direct LIBGUESTFS_PATH=/tmp/fakeapp \\
    LIBGUESTFS_HV=$PWD/guestfs-proto/tools/fake-hv.py FAKE_GUESTFSD_LOG=/tmp/rec \\
        guestfish --ro -a /tmp/disk.img run : list-filesystems : vfs-type /dev/sda1

Environment:
- FAKE_GUESTFSD_LOG: where the daemon writes NNN-NAME.call / NNN-NAME.reply and calls.txt
  (default /tmp/fake-guestfsd-log);
- FAKE_GUESTFSD: the daemon binary (default: target/debug/examples/fake_guestfsd next to this
  script's workspace);
- FAKE_HV_QEMU: the real QEMU for probing (default qemu-system-x86_64).
"""
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WORKSPACE = os.path.dirname(os.path.dirname(HERE))


def channel_socket(argv):
    """The unix socket behind the chardev of org.libguestfs.channel.0, or None."""
    chardevs = {}
    port_chardev = None
    for i, a in enumerate(argv[:-1]):
        v = argv[i + 1]
        if a == "-chardev" and v.startswith("socket,"):
            opts = dict(kv.split("=", 1) for kv in v.split(",")[1:] if "=" in kv)
            if "id" in opts and "path" in opts:
                chardevs[opts["id"]] = opts["path"]
        if a == "-device" and v.startswith("virtserialport,"):
            opts = dict(kv.split("=", 1) for kv in v.split(",")[1:] if "=" in kv)
            if opts.get("name") == "org.libguestfs.channel.0":
                port_chardev = opts.get("chardev")
    return chardevs.get(port_chardev)


def main():
    argv = sys.argv[1:]
    sock = channel_socket(argv)
    if sock is None or "-kernel" not in argv:
        qemu = os.environ.get("FAKE_HV_QEMU", "qemu-system-x86_64")
        os.execvp(qemu, [qemu] + argv)
    daemon = os.environ.get(
        "FAKE_GUESTFSD", os.path.join(WORKSPACE, "target", "debug", "examples", "fake_guestfsd"))
    logdir = os.environ.get("FAKE_GUESTFSD_LOG", "/tmp/fake-guestfsd-log")
    os.makedirs(logdir, exist_ok=True)
    with open(os.path.join(logdir, "hv-argv.txt"), "w") as f:
        f.write("\n".join(argv) + "\n")
    # The console (-serial stdio) is libguestfs's view of the boot: say who we are.
    print("fake-hv: no VM; guestfs-proto's fake daemon answers on", sock, flush=True)
    # libguestfs ends the appliance with SIGTERM and reports a hypervisor killed by a signal as
    # an error (QEMU exits 0 on SIGTERM): stay the parent, stop the daemon, exit 0.
    child = subprocess.Popen([daemon, sock, logdir])
    stopped = []

    def stop(_sig, _frame):
        # Not child.wait() here: the main thread's wait holds Popen's lock.
        stopped.append(True)
        os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    rc = child.wait()
    sys.exit(0 if stopped else rc)


if __name__ == "__main__":
    main()
