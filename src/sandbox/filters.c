/* The seccomp allow lists, one per thread kind (docs/threat-model.md). The
 * one file to change when a thread needs something new: add the call to
 * the group of the kind that makes it, with the argument checks that keep
 * it narrow, and say why. ioctls are always listed by request number, and
 * on the KVM object they belong to where the thread knows it. Nothing may
 * allow ioctl, mmap or mprotect without argument checks. */
#include "sandbox/filters.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/userfaultfd.h>

#define ARG_EQ(i, v)       { .arg = i, .op = SC_EQ, .sym = SC_LIT, .val = (v) }
#define ARG_SYM(i, s)      { .arg = i, .op = SC_EQ, .sym = (s) }
#define ARG_MASK(i, m, v)  { .arg = i, .op = SC_MASKED_EQ, .sym = SC_LIT, .mask = (m), .val = (v) }

#define ALLOW(sys)         { .nr = SCMP_SYS(sys), .name = #sys }
#define ALLOW_IF(sys, what_, ...) { .nr = SCMP_SYS(sys), .name = #sys, .what = what_, .cmp = { __VA_ARGS__ } }
/* The request is compared on its low 32 bits: the kernel's ioctl takes an
 * unsigned int, so garbage above cannot turn one request into another. */
#define IOCTL_ON(fd, req)  ALLOW_IF(ioctl, #req, ARG_SYM(0, fd), ARG_MASK(1, 0xffffffffu, req))
#define IOCTL_ANY(req)     ALLOW_IF(ioctl, #req, ARG_MASK(1, 0xffffffffu, req))

#define GROUP(id, why_) \
	const struct sc_group id = { #id, why_, id##_rules, sizeof(id##_rules) / sizeof(id##_rules[0]) }

/* Executable memory is never needed once a guest runs. */
#define NO_EXEC(sys) ALLOW_IF(sys, "without PROT_EXEC", ARG_MASK(2, PROT_EXEC, 0))

/* ---- every thread ------------------------------------------------------------ */

static const struct sc_rule base_rules[] = {
	ALLOW(write),                /* log lines (stderr), serial output (stdout), eventfd pokes */
	ALLOW(futex),                /* mutexes, condition variables, pthread_join */
	ALLOW(restart_syscall),
	ALLOW(rt_sigreturn),         /* the vCPU kick signal returns */
	ALLOW(rt_sigprocmask),       /* pthread_sigmask, abort() */
	ALLOW(exit),                 /* a thread ends */
	ALLOW(exit_group),
	ALLOW(getpid),
	ALLOW(gettid),
	/* pthread_kill (the vCPU kick, SIGUSR1) and abort(): this process only. */
	ALLOW_IF(tgkill, "to Ember's own threads", ARG_SYM(0, SC_PID)),
	ALLOW(clock_gettime),        /* where the vDSO cannot answer */
	ALLOW(clock_nanosleep),
	ALLOW(sched_yield),
	ALLOW(getrandom),            /* json-c's hash seed, malloc's tcache randomization */
	/* The terminal goes back to cooked mode before Ember exits, whichever
	 * thread ends it (the SIGSYS report included). */
	ALLOW_IF(ioctl, "TCSETS on stdin", ARG_EQ(0, 0), ARG_MASK(1, 0xffffffffu, TCSETS)),
};
static GROUP(base, "every thread: logging, locks, signals, ending");

static const struct sc_rule memory_rules[] = {
	NO_EXEC(mmap),               /* malloc arenas, thread stacks, vCPU run areas */
	NO_EXEC(mprotect),           /* malloc, stack guards, pc-testdev's page flush */
	ALLOW(munmap),
	ALLOW(mremap),               /* realloc of large blocks */
	ALLOW(brk),
	ALLOW_IF(madvise, "MADV_DONTNEED", ARG_EQ(2, MADV_DONTNEED)),   /* free(), thread exit */
	ALLOW_IF(madvise, "MADV_FREE", ARG_EQ(2, MADV_FREE)),
	ALLOW_IF(madvise, "MADV_REMOVE", ARG_EQ(2, MADV_REMOVE)),       /* giving guest RAM back */
	ALLOW_IF(madvise, "MADV_DONTDUMP", ARG_EQ(2, MADV_DONTDUMP)),
	/* The balloon and free page reporting give guest RAM back by punching
	 * holes in the memfd, and read what it holds (fstat, SEEK_DATA). */
	ALLOW_IF(fallocate, "punching holes", ARG_EQ(1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)),
	ALLOW(fstat),
	ALLOW_IF(newfstatat, "fstat (AT_EMPTY_PATH)", ARG_EQ(3, AT_EMPTY_PATH)),
	ALLOW(lseek),
};
static GROUP(memory, "every thread: memory allocation");

/* ---- vCPU threads -------------------------------------------------------------- */

static const struct sc_rule vcpu_run_rules[] = {
	IOCTL_ON(SC_FD_VCPU, KVM_RUN),
	IOCTL_ON(SC_FD_VCPU, KVM_GET_REGS),     /* reporting a crash: RIP */
	IOCTL_ON(SC_FD_VCPU, KVM_GET_SREGS),    /* reporting a crash: CPL, CS base */
	IOCTL_ON(SC_FD_VCPU, KVM_TRANSLATE),    /* reporting a crash: the instruction bytes */
};
static GROUP(vcpu_run, "its own vCPU only");

static const struct sc_rule irq_rules[] = {
	IOCTL_ON(SC_FD_VM, KVM_IRQ_LINE),       /* devices raise ISA lines (serial, SCI, pc-testdev) */
};
static GROUP(irq, "devices' interrupt lines");

/* A driver programs an MSI-X vector (its route changes) or enables a
 * virtqueue (its notify address gets an ioeventfd) by writing device
 * registers: on a vCPU thread, or on main when a restored device is put
 * back or a device is reset. */
static const struct sc_rule pci_rules[] = {
	IOCTL_ON(SC_FD_VM, KVM_SET_GSI_ROUTING),
	IOCTL_ON(SC_FD_VM, KVM_IOEVENTFD),
};
static GROUP(pci, "MSI-X routes and virtqueue notifications");

/* virtio-net: the offloads the driver accepted go to the tap when it
 * finishes feature negotiation (a vCPU) or its state is put back (main). */
static const struct sc_rule tap_rules[] = {
	IOCTL_ANY(TUNSETOFFLOAD),
	/* receiving is switched on in the loop when the driver posts buffers */
	ALLOW_IF(epoll_ctl, "EPOLL_CTL_MOD", ARG_EQ(1, EPOLL_CTL_MOD)),
};
static GROUP(tap, "a tap device's offloads");

/* virtio-net's frames, to and from the tap, on the loop. */
static const struct sc_rule tap_io_rules[] = {
	ALLOW(readv), ALLOW(writev),
};
static GROUP(tap_io, "a tap device's frames");

/* A vCPU whose dirty ring is full harvests it itself (KVM_EXIT_DIRTY_RING_FULL)
 * and, after KVM overran a ring, turns logging off and on again. */
static const struct sc_rule vcpu_dirty_rules[] = {
	IOCTL_ON(SC_FD_VM, KVM_RESET_DIRTY_RINGS),
	IOCTL_ON(SC_FD_VM, KVM_SET_USER_MEMORY_REGION),
};
static GROUP(vcpu_dirty, "harvesting its full dirty ring");

/* ---- the main thread: the event loop ------------------------------------------ */

static const struct sc_rule loop_rules[] = {
	ALLOW(epoll_wait),
	ALLOW(epoll_pwait),
	ALLOW(epoll_ctl),
	ALLOW(read),                 /* stdin, eventfds, timerfds */
	ALLOW(close),
	ALLOW(timerfd_create),       /* the shutdown timeout, the self-test */
	ALLOW(timerfd_settime),
	ALLOW_IF(ioctl, "TCGETS on stdin", ARG_EQ(0, 0), ARG_MASK(1, 0xffffffffu, TCGETS)),
	IOCTL_ON(SC_FD_VM, KVM_IRQ_LINE),       /* the power button's SCI (ctl shutdown) */
	/* virtio-blk submits and reaps its requests on the loop; the ring was
	 * set up before the filters. */
	ALLOW(io_uring_enter),
	/* A VM that stops (the guest powered off) while a migration is still
	 * sending: its teardown shuts the socket down to unblock the migration
	 * thread (migrate_finish). Without it Ember died here with exit 8. */
	ALLOW_IF(shutdown, "SHUT_RDWR", ARG_EQ(1, SHUT_RDWR)),
};
static GROUP(loop, "the event loop, console and timers");

static const struct sc_rule api_rules[] = {
	ALLOW(accept4),
	ALLOW(recvfrom),
	ALLOW(sendto),
	/* Removing the socket at exit, only in its own directory. */
	ALLOW_IF(newfstatat, "in the control socket's directory", ARG_SYM(0, SC_FD_API_DIR)),
	ALLOW_IF(unlinkat, "in the control socket's directory", ARG_SYM(0, SC_FD_API_DIR)),
};
static GROUP(api, "the control socket (served on the event loop)");

/* Reading a paused VM's state: the save/restore self-test, snapshots. */
static const struct sc_rule state_read_rules[] = {
	IOCTL_ANY(KVM_GET_REGS), IOCTL_ANY(KVM_GET_SREGS), IOCTL_ANY(KVM_GET_SREGS2),
	IOCTL_ANY(KVM_GET_FPU), IOCTL_ANY(KVM_GET_XSAVE), IOCTL_ANY(KVM_GET_XSAVE2),
	IOCTL_ANY(KVM_GET_XCRS), IOCTL_ANY(KVM_GET_LAPIC), IOCTL_ANY(KVM_GET_MSRS),
	IOCTL_ANY(KVM_GET_MP_STATE), IOCTL_ANY(KVM_GET_DEBUGREGS), IOCTL_ANY(KVM_GET_VCPU_EVENTS),
	IOCTL_ANY(KVM_GET_NESTED_STATE), IOCTL_ANY(KVM_GET_TSC_KHZ), IOCTL_ANY(KVM_GET_CPUID2),
	IOCTL_ON(SC_FD_VM, KVM_GET_IRQCHIP), IOCTL_ON(SC_FD_VM, KVM_GET_PIT2),
	IOCTL_ON(SC_FD_VM, KVM_GET_CLOCK),
};
static GROUP(state_read, "saving vCPU and VM state");

/* Waking from ACPI S3 (suspend.c, on the loop): every vCPU reset to its
 * resume state, and with --bios-state the 8259s and PIT programmed again. */
static const struct sc_rule s3_wake_rules[] = {
	IOCTL_ANY(KVM_SET_SREGS), IOCTL_ANY(KVM_SET_REGS), IOCTL_ANY(KVM_SET_FPU),
	IOCTL_ANY(KVM_SET_VCPU_EVENTS), IOCTL_ANY(KVM_SET_LAPIC), IOCTL_ANY(KVM_SET_MP_STATE),
	IOCTL_ON(SC_FD_VM, KVM_SET_IRQCHIP), IOCTL_ON(SC_FD_VM, KVM_SET_PIT2),
};
static GROUP(s3_wake, "waking the guest from S3 (suspend to RAM)");

/* ---- I/O workers and migration: no such thread on main yet ------------------- */

static const struct sc_rule io_rules[] = {
	ALLOW(read),                 /* its eventfd */
	ALLOW(pread64), ALLOW(preadv), ALLOW(pwrite64), ALLOW(pwritev),
	ALLOW(fdatasync), ALLOW(fsync),
	/* The balloon's discard worker lowers its own priority: the guest's
	 * vCPUs come first. */
	ALLOW_IF(setpriority, "PRIO_PROCESS", ARG_EQ(0, PRIO_PROCESS)),
};
static GROUP(io, "worker threads: block requests, the balloon's discards");

static const struct sc_rule migration_rules[] = {
	ALLOW(read), ALLOW(recvfrom), ALLOW(sendto), ALLOW(sendmsg), ALLOW(close),
	ALLOW(poll), ALLOW(ppoll),
	IOCTL_ON(SC_FD_VM, KVM_GET_DIRTY_LOG), IOCTL_ON(SC_FD_VM, KVM_CLEAR_DIRTY_LOG),
	IOCTL_ON(SC_FD_VM, KVM_RESET_DIRTY_RINGS),
	/* turning dirty logging on and off for a memory slot */
	IOCTL_ON(SC_FD_VM, KVM_SET_USER_MEMORY_REGION),
};
static GROUP(migration, "sending the stream, dirty tracking");

/* The migration channel: an outgoing stream socket (the address is given
 * numerically: no name lookups), its buffer sizes and timeouts. */
static const struct sc_rule channel_rules[] = {
	ALLOW_IF(socket, "AF_UNIX stream", ARG_EQ(0, AF_UNIX), ARG_EQ(1, SOCK_STREAM | SOCK_CLOEXEC)),
	ALLOW_IF(socket, "AF_INET stream", ARG_EQ(0, AF_INET), ARG_EQ(1, SOCK_STREAM | SOCK_CLOEXEC)),
	ALLOW_IF(socket, "AF_INET6 stream", ARG_EQ(0, AF_INET6), ARG_EQ(1, SOCK_STREAM | SOCK_CLOEXEC)),
	ALLOW(connect),
	ALLOW(setsockopt),
	ALLOW(shutdown),
};
static GROUP(channel, "the outgoing migration stream");

/* A snapshot: the directory the owner named (the API is the owner's,
 * docs/threat-model.md), its files written whole then renamed into place. */
static const struct sc_rule snapshot_rules[] = {
	ALLOW(mkdir),
	ALLOW(getcwd), ALLOW(readlink),          /* realpath() of the directory */
	ALLOW_IF(openat, "O_WRONLY|O_CREAT|O_TRUNC (a new file)", ARG_EQ(2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)),
	ALLOW(ftruncate), ALLOW(pwrite64), ALLOW(pwritev), ALLOW(fdatasync),
	ALLOW(rename), ALLOW(unlink),
};
static GROUP(snapshot, "writing a snapshot's files");

/* A lazy restore: guest RAM is filled from the memory file as the guest
 * touches it (userfaultfd) and in the background. */
static const struct sc_rule lazy_rules[] = {
	ALLOW(pread64),
	IOCTL_ANY(UFFDIO_COPY), IOCTL_ANY(UFFDIO_ZEROPAGE), IOCTL_ANY(UFFDIO_WAKE),
	IOCTL_ANY(UFFDIO_UNREGISTER),
};
static GROUP(lazy, "loading a restored VM's memory on demand");

const struct sc_kind sc_kinds[THREAD_KINDS] = {
	[THREAD_MAIN] = { "main", "the event loop: console, control API, timers, device backends, teardown",
			  { &base, &memory, &loop, &api, &state_read, &s3_wake, &pci, &tap, &tap_io } },
	[THREAD_VCPU] = { "vcpu", "one per vCPU: KVM_RUN and the device emulation its exits call",
			  { &base, &memory, &vcpu_run, &irq, &pci, &tap, &vcpu_dirty } },
	[THREAD_IO] = { "io", "I/O worker threads fed by the event loop",
			{ &base, &memory, &io, &irq } },
	[THREAD_MIGRATION] = { "migration", "the snapshot writer, the live-migration sender, the lazy restore loader",
			       { &base, &memory, &state_read, &migration, &channel, &snapshot, &lazy } },
};

/* ---- building VMs after the filters (main, SANDBOX_REBUILD) -------------------- */

/* --on-reboot restart and the save/restore self-test make a new VM on the
 * main thread after the filters are in: guest RAM, the KVM objects, the CPU
 * probe, the boot state and (self-test) the state loaded. Its vCPU threads
 * start under main's filter, so main's list also holds theirs. */
static const struct sc_rule sc_group_rebuild_rules[] = {
	ALLOW(memfd_create), ALLOW(ftruncate), ALLOW(epoll_create1), ALLOW(eventfd2),
	/* guest RAM on transparent huge pages (mem_use_thp), where the host allows */
	ALLOW_IF(madvise, "MADV_HUGEPAGE", ARG_EQ(2, MADV_HUGEPAGE)),
	IOCTL_ON(SC_FD_KVM, KVM_CREATE_VM), IOCTL_ON(SC_FD_KVM, KVM_CHECK_EXTENSION),
	IOCTL_ON(SC_FD_KVM, KVM_GET_VCPU_MMAP_SIZE), IOCTL_ON(SC_FD_KVM, KVM_GET_SUPPORTED_CPUID),
	IOCTL_ON(SC_FD_KVM, KVM_GET_MSR_INDEX_LIST), IOCTL_ON(SC_FD_KVM, KVM_GET_MSR_FEATURE_INDEX_LIST),
	IOCTL_ON(SC_FD_KVM, KVM_X86_GET_MCE_CAP_SUPPORTED),
	/* VM fds (the new VM's, and the CPU probe's scratch VM) */
	IOCTL_ANY(KVM_CHECK_EXTENSION), IOCTL_ANY(KVM_SET_TSS_ADDR), IOCTL_ANY(KVM_SET_IDENTITY_MAP_ADDR),
	IOCTL_ANY(KVM_ENABLE_CAP), IOCTL_ANY(KVM_SET_USER_MEMORY_REGION), IOCTL_ANY(KVM_CREATE_IRQCHIP),
	IOCTL_ANY(KVM_CREATE_PIT2), IOCTL_ANY(KVM_REINJECT_CONTROL), IOCTL_ANY(KVM_CREATE_VCPU),
	IOCTL_ANY(KVM_SET_IRQCHIP), IOCTL_ANY(KVM_SET_PIT2), IOCTL_ANY(KVM_SET_CLOCK),
	IOCTL_ANY(KVM_GET_IRQCHIP), IOCTL_ANY(KVM_GET_PIT2), IOCTL_ANY(KVM_GET_CLOCK),
	/* vCPU fds: the CPU model, the boot state, a loaded state */
	IOCTL_ANY(KVM_SET_CPUID2), IOCTL_ANY(KVM_X86_SETUP_MCE), IOCTL_ANY(KVM_HAS_DEVICE_ATTR),
	IOCTL_ANY(KVM_SET_TSC_KHZ), IOCTL_ANY(KVM_SET_LAPIC), IOCTL_ANY(KVM_SET_SREGS),
	IOCTL_ANY(KVM_SET_SREGS2), IOCTL_ANY(KVM_SET_REGS), IOCTL_ANY(KVM_SET_FPU), IOCTL_ANY(KVM_SET_XSAVE),
	IOCTL_ANY(KVM_SET_XCRS), IOCTL_ANY(KVM_SET_MSRS), IOCTL_ANY(KVM_SET_MP_STATE),
	IOCTL_ANY(KVM_SET_DEBUGREGS), IOCTL_ANY(KVM_SET_VCPU_EVENTS), IOCTL_ANY(KVM_SET_NESTED_STATE),
	IOCTL_ANY(KVM_RUN), IOCTL_ANY(KVM_TRANSLATE), IOCTL_ANY(KVM_IRQ_LINE),
	/* the new VM's devices: MSI-X vectors (irqfds), virtio-blk's ring */
	IOCTL_ANY(KVM_IRQFD), IOCTL_ANY(KVM_IOEVENTFD), IOCTL_ANY(KVM_SET_GSI_ROUTING),
	ALLOW(io_uring_setup), ALLOW(io_uring_register),
	/* the process's disks and taps (src/host.c), duplicated for the new VM */
	ALLOW_IF(fcntl, "F_DUPFD_CLOEXEC", ARG_EQ(1, F_DUPFD_CLOEXEC)),
	IOCTL_ANY(BLKGETSIZE64),
};
const struct sc_group sc_group_rebuild = {
	"rebuild", "main, with --on-reboot restart or the save/restore self-test: building VMs",
	sc_group_rebuild_rules, sizeof(sc_group_rebuild_rules) / sizeof(sc_group_rebuild_rules[0])
};

/* The creator's filter rules the new thread until it has its own: clone
 * (threads only; clone3 cannot be checked, so it fails with ENOSYS and
 * glibc falls back to clone), what glibc's thread start-up does, and
 * installing the thread's own filter. */
static const struct sc_rule sc_group_spawn_rules[] = {
	ALLOW_IF(clone, "threads (CLONE_THREAD)", ARG_MASK(0, CLONE_THREAD, CLONE_THREAD)),
	{ .nr = SCMP_SYS(clone3), .name = "clone3", .what = "fails with ENOSYS", .enosys = true },
	ALLOW(set_robust_list), ALLOW(rseq),
	ALLOW_IF(prctl, "PR_SET_NAME", ARG_EQ(0, PR_SET_NAME)),
	ALLOW_IF(prctl, "PR_SET_NO_NEW_PRIVS", ARG_EQ(0, PR_SET_NO_NEW_PRIVS)),
	ALLOW_IF(seccomp, "SECCOMP_SET_MODE_FILTER", ARG_EQ(0, SECCOMP_SET_MODE_FILTER)),
	ALLOW(sigaltstack),
};
const struct sc_group sc_group_spawn = {
	"spawn", "a thread that starts threads after its own filter is in",
	sc_group_spawn_rules, sizeof(sc_group_spawn_rules) / sizeof(sc_group_spawn_rules[0])
};

#ifdef EMBER_SANITIZER
/* ASan/UBSan/LSan builds only (the tests). Any thread: the runtime's
 * thread teardown, its shadow memory, and a report (its symbolizer is
 * warmed up before the filters, see sandbox_setup). */
static const struct sc_rule sanitizer_rules[] = {
	IOCTL_ANY(TCGETS),           /* isatty(stderr): a report in colour or not */
	ALLOW(sigaltstack), ALLOW(madvise),
	ALLOW(sched_getaffinity),    /* a thread started by a filtered one (restart) */
};
static GROUP(sanitizer, "sanitizer runtime (test builds)");
const struct sc_group *const sc_group_sanitizer = &sanitizer;
/* Main: the leak check at exit clones a tracer (a process sharing Ember's
 * memory) that lists /proc/self/task and stops every thread with ptrace. */
static const struct sc_rule sanitizer_main_rules[] = {
	ALLOW(open), ALLOW(lseek), ALLOW(getdents), ALLOW(rt_sigaction), ALLOW(clone), ALLOW(ptrace),
	ALLOW(wait4), ALLOW(prctl), ALLOW(getppid),
};
static GROUP(sanitizer_main, "leak check at exit (test builds)");
const struct sc_group *const sc_group_sanitizer_main = &sanitizer_main;
#else
const struct sc_group *const sc_group_sanitizer = NULL;
const struct sc_group *const sc_group_sanitizer_main = NULL;
#endif
