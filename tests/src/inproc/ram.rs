//! Guest RAM for in-process runs, and the virtio-drivers [`Hal`] that puts the guest driver's
//! queues and buffers in it.
//!
//! The RAM is a `vm-memory` mapping, as a VMM's would be; the device model reads and writes it
//! through vm-memory and virtio-queue while the driver uses plain pointers into the same pages.
//! Queue memory is allocated inside it; buffers from the driver's own heap (ordinary host
//! memory here) are bounced through it on `share`/`unshare`, as a swiotlb would. The Hal's
//! methods are associated functions, so the RAM is per thread: [`GuestRam::install`] makes it
//! the current one for the thread that runs the driver.

use std::alloc::Layout;
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use linked_list_allocator::Heap;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// Where guest RAM starts (not 0: virtio-drivers treats physical address 0 as a failure).
pub const RAM_BASE: u64 = 0x10_0000;

/// Why guest RAM could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RamError {
    /// Mapping the memory failed.
    #[error("cannot map {size} bytes of guest RAM: {why}")]
    Map {
        /// The size asked for.
        size: usize,
        /// What vm-memory said.
        why: String,
    },
}

/// Guest RAM with an allocator for driver memory.
pub struct GuestRam {
    mem: GuestMemoryMmap,
    host_base: *mut u8,
    heap: Mutex<Heap>,
}

// SAFETY: `host_base` points into the mapping owned by `mem` (itself Send and Sync) and is only
// used to compute addresses; the allocator behind it is reached through a mutex.
unsafe impl Send for GuestRam {}
// SAFETY: as above.
unsafe impl Sync for GuestRam {}

thread_local! {
    static CURRENT: RefCell<Option<Arc<GuestRam>>> = const { RefCell::new(None) };
}

impl GuestRam {
    /// Maps `size` bytes of guest RAM at [`RAM_BASE`].
    pub fn new(size: usize) -> Result<Arc<Self>, RamError> {
        let err = |why: String| RamError::Map { size, why };
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(RAM_BASE), size)])
            .map_err(|e| err(e.to_string()))?;
        let host_base = mem
            .get_host_address(GuestAddress(RAM_BASE))
            .map_err(|e| err(e.to_string()))?;
        let mut heap = Heap::empty();
        // SAFETY: `host_base` starts the one region just mapped, `size` bytes, mapped while `mem`
        // (owned by the result) lives; nothing else allocates from it.
        unsafe { heap.init(host_base, size) };
        Ok(Arc::new(GuestRam {
            mem,
            host_base,
            heap: Mutex::new(heap),
        }))
    }

    /// The memory, to hand to the device model.
    pub fn memory(&self) -> GuestMemoryMmap {
        self.mem.clone()
    }

    /// Makes this the RAM [`InProcHal`] uses on the calling thread.
    pub fn install(self: &Arc<Self>) {
        CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
    }

    fn current() -> Arc<GuestRam> {
        CURRENT.with(|c| {
            c.borrow()
                .clone()
                .expect("InProcHal used on a thread without GuestRam::install")
        })
    }

    fn alloc(&self, size: usize, align: usize) -> (PhysAddr, NonNull<u8>) {
        let layout = Layout::from_size_align(size.max(1), align).expect("layout");
        let ptr = self
            .heap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allocate_first_fit(layout)
            .unwrap_or_else(|()| panic!("guest RAM exhausted allocating {size} bytes"));
        (self.gpa(ptr.as_ptr()), ptr)
    }

    fn free(&self, ptr: NonNull<u8>, size: usize, align: usize) {
        let layout = Layout::from_size_align(size.max(1), align).expect("layout");
        // SAFETY: `ptr` came from `alloc` with the same layout (callers pass back what they got).
        unsafe {
            self.heap
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .deallocate(ptr, layout)
        };
    }

    fn gpa(&self, host: *const u8) -> PhysAddr {
        RAM_BASE + (host as usize - self.host_base as usize) as u64
    }

    fn host(&self, gpa: PhysAddr) -> NonNull<u8> {
        let off = usize::try_from(gpa - RAM_BASE).expect("address");
        // SAFETY: `gpa` was handed out by `alloc`, so the offset is inside the mapping.
        NonNull::new(unsafe { self.host_base.add(off) }).expect("non-null")
    }
}

/// virtio-drivers' [`Hal`] over the current thread's [`GuestRam`].
pub struct InProcHal;

const PAGE: usize = 4096;
const BOUNCE_ALIGN: usize = 16;

// SAFETY: allocations come from a heap over guest RAM that stays mapped while the RAM lives,
// are zeroed and page-aligned as the trait asks, and shared buffers are bounced through
// separate allocations that are freed only in `unshare`.
unsafe impl Hal for InProcHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let ram = GuestRam::current();
        let (pa, ptr) = ram.alloc(pages * PAGE, PAGE);
        // SAFETY: `ptr` points to `pages * PAGE` bytes just allocated.
        unsafe { ptr.as_ptr().write_bytes(0, pages * PAGE) };
        (pa, ptr)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        GuestRam::current().free(vaddr, pages * PAGE, PAGE);
        0
    }

    unsafe fn mmio_phys_to_virt(_paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // The in-process transport reaches its registers through function calls, never MMIO.
        panic!("InProcHal has no MMIO: use the in-process transport")
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let ram = GuestRam::current();
        let len = buffer.len();
        let (pa, ptr) = ram.alloc(len, BOUNCE_ALIGN);
        if !matches!(direction, BufferDirection::DeviceToDriver) {
            // SAFETY: the caller guarantees `buffer` is valid for reads of `len` bytes; the
            // bounce allocation is `len` bytes and does not overlap it.
            unsafe {
                std::ptr::copy_nonoverlapping(buffer.as_ptr() as *const u8, ptr.as_ptr(), len)
            };
        }
        pa
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let ram = GuestRam::current();
        let len = buffer.len();
        let bounce = ram.host(paddr);
        if !matches!(direction, BufferDirection::DriverToDevice) {
            // SAFETY: the caller guarantees `buffer` is valid for writes of `len` bytes and
            // `paddr` is what `share` returned for it.
            unsafe {
                std::ptr::copy_nonoverlapping(bounce.as_ptr(), buffer.as_ptr() as *mut u8, len)
            };
        }
        ram.free(bounce, len, BOUNCE_ALIGN);
    }
}
