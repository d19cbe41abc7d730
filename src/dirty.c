/* Dirty tracking: the KVM dirty bitmap and dirty ring behind one interface. */
#include "dirty.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vcpu.h"
#include "vm.h"

#define PAGE_SIZE 4096u
#define WORDS(n) (((n) + 63) / 64)
/* The longest a vCPU sleeps in one go for the dirty limit: a pause or stop
 * must not wait longer for it. */
#define THROTTLE_SLICE_NS 20000000ull

const char *dirty_backend_name(enum dirty_backend b)
{
	return b == DIRTY_RING ? "ring" : "bitmap";
}

int dirty_parse_choice(const char *s, enum dirty_choice *out)
{
	if (!strcmp(s, "auto"))
		*out = DIRTY_CHOICE_AUTO;
	else if (!strcmp(s, "bitmap"))
		*out = DIRTY_CHOICE_BITMAP;
	else if (!strcmp(s, "ring"))
		*out = DIRTY_CHOICE_RING;
	else
		return -EINVAL;
	return 0;
}

uint64_t bitmap_count(const uint64_t *bm, uint64_t nbits)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < WORDS(nbits); i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

void bitmap_fill(uint64_t *bm, uint64_t nbits)
{
	memset(bm, 0xff, nbits / 64 * 8);
	if (nbits % 64)
		bm[nbits / 64] = (1ull << (nbits % 64)) - 1;
}

/* The `auto` rule (docs/migration.md, "Choosing a backend: the
 * measurements"): the dirty bitmap, whatever the guest. KVM fixes the
 * mechanism for a VM's life before any vCPU exists (the ring must be
 * enabled first; KVM_GET_DIRTY_LOG then fails with ENXIO, and
 * KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP is arm64's), so nothing measured
 * during a migration can switch it, and nothing known at creation made the
 * ring pay: in bench/migration.sh, 1 to 8 GiB at 0 to 800 MB/s, the same
 * migrations took 1.13-1.45x as long with the ring (median per size), its
 * harvest per pass cost more in 9 of 14 rows and its worst pass up to 26x
 * the bitmap's, and on kvm_pvm a ring can be overrun (each overrun resends
 * RAM). The dirty rate measured during the first pass drives the throttle
 * instead. */
static bool auto_wants_ring(uint64_t mem_size, unsigned ncpus)
{
	(void)mem_size;
	(void)ncpus;
	return false;
}

static int enable_ring(struct dirty *d, int vm_fd, int kvm_fd, uint32_t entries)
{
	int cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
	int max = ioctl(vm_fd, KVM_CHECK_EXTENSION, cap);
	if (max <= 0) {
		cap = KVM_CAP_DIRTY_LOG_RING;
		max = ioctl(vm_fd, KVM_CHECK_EXTENSION, cap);
	}
	if (max <= 0)
		return -ENOTSUP;
	uint64_t bytes = (uint64_t)entries * sizeof(struct kvm_dirty_gfn);
	if (bytes > (uint64_t)max || bytes < (uint64_t)sysconf(_SC_PAGESIZE))
		return -ERANGE;
	struct kvm_enable_cap ec = { .cap = (uint32_t)cap, .args = { bytes } };
	if (ioctl(vm_fd, KVM_ENABLE_CAP, &ec) < 0)
		return -errno;
	d->acq_rel = cap == KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
	d->ring_entries = entries;
	(void)kvm_fd;
	return 0;
}

int dirty_init(struct dirty *d, struct vm *vm, enum dirty_choice choice, uint32_t ring_entries)
{
	memset(d, 0, sizeof(*d));
	d->vm = vm;
	pthread_mutex_init(&d->lock, NULL);
	d->npages = vm->mem.size / PAGE_SIZE;
	d->acc = calloc(WORDS(d->npages), 8);
	d->ember = calloc(WORDS(d->npages), 8);
	if (!d->acc || !d->ember)
		return -ENOMEM;
	if (!ring_entries)
		ring_entries = DIRTY_RING_DEFAULT_ENTRIES;
	bool want_ring = choice == DIRTY_CHOICE_RING ||
			 (choice == DIRTY_CHOICE_AUTO && auto_wants_ring(vm->mem.size, vm->ncpus));
	d->backend = DIRTY_BITMAP;
	if (want_ring) {
		int r = enable_ring(d, vm->vm_fd, vm->kvm_fd, ring_entries);
		if (!r) {
			d->backend = DIRTY_RING;
			d->nrings = vm->ncpus;
			d->rings = calloc(vm->ncpus, sizeof(*d->rings));
			if (!d->rings)
				return -ENOMEM;
		} else if (choice == DIRTY_CHOICE_RING) {
			log_warn("--dirty-tracking ring: %s; using the dirty bitmap",
				 r == -ENOTSUP ? "KVM offers no dirty ring" :
				 r == -ERANGE ? "ring size out of KVM's range" : strerror(-r));
		}
	}
	if (d->backend == DIRTY_BITMAP) {
		/* Manual protection: KVM_GET_DIRTY_LOG no longer re-protects the
		 * whole slot; Ember clears (re-protects) only the chunks it is about
		 * to copy. INITIALLY_SET: enabling the log costs no write-protect
		 * pass over all of RAM, the first pass copies everything anyway. */
		int caps = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
		if (caps > 0) {
			uint64_t flags = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
			if (caps & KVM_DIRTY_LOG_INITIALLY_SET)
				flags |= KVM_DIRTY_LOG_INITIALLY_SET;
			struct kvm_enable_cap ec = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, .args = { flags } };
			if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &ec) == 0) {
				d->manual_protect = true;
				d->initially_set = flags & KVM_DIRTY_LOG_INITIALLY_SET;
			}
		}
		uint64_t most = 0;
		for (int i = 0; i < vm->mem.nregions; i++)
			if (vm->mem.regions[i].size / PAGE_SIZE > most)
				most = vm->mem.regions[i].size / PAGE_SIZE;
		d->scratch = calloc(WORDS(most), 8);
		if (!d->scratch)
			return -ENOMEM;
	}
	log_info("dirty tracking: %s%s", dirty_backend_name(d->backend),
		 d->backend == DIRTY_RING ? (d->acq_rel ? " (acquire/release)" : "") :
		 d->manual_protect ? " (manual protect)" : "");
	return 0;
}

void dirty_destroy(struct dirty *d)
{
	if (d->vm && d->vm->mem.dirty_log == d->ember)
		d->vm->mem.dirty_log = NULL;
	free(d->acc);
	free(d->ember);
	free(d->scratch);
	free(d->rings);
	pthread_mutex_destroy(&d->lock);
	memset(d, 0, sizeof(*d));
}

int dirty_vcpu_init(struct dirty *d, struct vcpu *v)
{
	if (d->backend != DIRTY_RING)
		return 0;
	size_t bytes = (size_t)d->ring_entries * sizeof(struct kvm_dirty_gfn);
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
		       (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * page);
	if (p == MAP_FAILED)
		return -errno;
	d->rings[v->index].gfns = p;
	return 0;
}

void dirty_vcpu_destroy(struct dirty *d, struct vcpu *v)
{
	if (d->backend != DIRTY_RING || !d->rings || v->index >= d->nrings || !d->rings[v->index].gfns)
		return;
	munmap(d->rings[v->index].gfns, (size_t)d->ring_entries * sizeof(struct kvm_dirty_gfn));
	d->rings[v->index].gfns = NULL;
}

static int set_logging(struct dirty *d, bool on)
{
	struct guest_mem *m = &d->vm->mem;
	for (int i = 0; i < m->nregions; i++) {
		const struct mem_region *reg = &m->regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = (uint32_t)i,
			.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = reg->gpa,
			.memory_size = reg->size,
			.userspace_addr = (uint64_t)(uintptr_t)(m->host + reg->offset),
		};
		if (ioctl(d->vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return -errno;
	}
	return 0;
}

int dirty_start(struct dirty *d)
{
	pthread_mutex_lock(&d->lock);
	int r = 0;
	if (!d->active) {
		memset(d->acc, 0, WORDS(d->npages) * 8);
		memset(d->ember, 0, WORDS(d->npages) * 8);
		/* Without INITIALLY_SET every page is dirty to begin with. */
		if (!(d->backend == DIRTY_BITMAP && d->initially_set))
			bitmap_fill(d->acc, d->npages);
		__atomic_store_n(&d->vm->mem.dirty_log, d->ember, __ATOMIC_RELEASE);
		r = set_logging(d, true);
		if (r)
			__atomic_store_n(&d->vm->mem.dirty_log, NULL, __ATOMIC_RELEASE);
		else
			d->active = true;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

static uint64_t charge(uint64_t *allow_ns, uint64_t pages, uint64_t limit_pps, uint64_t now);

/* With the lock held, a dirty limit set: vCPU idx (or all, idx < 0) dirtied
 * pages more; a vCPU over its budget sleeps it off before running again. */
static void throttle_charge(struct dirty *d, int idx, uint64_t pages)
{
	struct vm *vm = d->vm;
	uint64_t now = now_ns(), until;
	if (idx >= 0)
		until = charge(&d->rings[idx].allow_ns, pages, d->limit_pps, now);
	else
		until = charge(&d->global_allow_ns, pages, d->limit_pps * vm->ncpus, now);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (idx >= 0 && i != (unsigned)idx)
			continue;
		__atomic_store_n(&vm->vcpus[i]->throttle_until_ns, until, __ATOMIC_RELAXED);
		if (until > now + 1000000)
			vcpu_kick(vm->vcpus[i]);
	}
}

uint32_t dirty_ring_gap(const struct kvm_dirty_gfn *gfns, uint32_t entries, uint32_t fetch)
{
	for (uint32_t k = 0; k < entries; k++) {
		uint32_t f = __atomic_load_n(&gfns[(fetch + k) & (entries - 1)].flags, __ATOMIC_ACQUIRE);
		if (f & KVM_DIRTY_GFN_F_DIRTY)
			return k;
	}
	return entries;
}

/* With the lock held: every ring entry KVM has published, in order. After
 * an overrun (redo_until ahead of fetch) entries still flagged RESET were
 * harvested already and are stepped over, as KVM's reset does. */
static uint64_t harvest_ring(struct dirty *d, unsigned idx)
{
	struct dirty_ring *ring = &d->rings[idx];
	struct guest_mem *m = &d->vm->mem;
	uint64_t n = 0;
	if (!ring->gfns)
		return 0;
	for (;;) {
		struct kvm_dirty_gfn *e = &ring->gfns[ring->fetch & (d->ring_entries - 1)];
		/* Acquire: slot and offset are valid once DIRTY is seen (api.rst,
		 * KVM_CAP_DIRTY_LOG_RING_ACQ_REL). */
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		if (!(flags & KVM_DIRTY_GFN_F_DIRTY)) {
			if ((flags & KVM_DIRTY_GFN_F_RESET) && (int32_t)(ring->redo_until - ring->fetch) > 0) {
				ring->fetch++;
				continue;
			}
			break;
		}
		uint32_t slot = e->slot;
		uint64_t off = e->offset;
		if ((slot >> 16) == 0 && (int)(slot & 0xffff) < m->nregions &&
		    off < m->regions[slot & 0xffff].size / PAGE_SIZE) {
			uint64_t page = m->regions[slot & 0xffff].offset / PAGE_SIZE + off;
			__atomic_fetch_or(&d->acc[page >> 6], 1ull << (page & 63), __ATOMIC_RELAXED);
		} else {
			d->stats.bad_entries++;
		}
		/* Release: KVM may reuse the entry only after we are done. */
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		ring->fetch++;
		ring->harvested++;
		n++;
	}
	return n;
}

/* KVM stops resetting when a signal is pending (the vCPU kick): block it
 * meanwhile (all but SIGSYS, the seccomp report, which a blocked state
 * would turn into a silent kill) and go on until the ioctl has done all
 * the work. Returns the
 * number of entries KVM reset, -1 if it is not known. */
static int reset_rings(struct dirty *d)
{
	sigset_t all, old;
	int r = -1;
	sigfillset(&all);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < 1000; i++) {
		r = ioctl(d->vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0);
		if (r >= 0 || (errno != EINTR && errno != EAGAIN)) {
			if (r < 0)
				log_warn("KVM_RESET_DIRTY_RINGS: %s", strerror(errno));
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* With the lock held, after KVM overran a ring: entries were overwritten
 * before Ember read them and their pages are lost, and KVM left those
 * pages writable (only a reset re-protects a page). Start over: every
 * page counts as dirty and logging is turned off and on again, which
 * write-protects all of RAM. */
static void rebaseline(struct dirty *d, unsigned idx, uint32_t lost)
{
	d->stats.ring_overruns++;
	d->stats.ring_lost += lost;
	if (d->stats.ring_overruns == 1)
		log_warn("dirty ring of vCPU %u: KVM pushed past the end of the ring (%u entries overwritten "
			 "unread; a kvm_pvm bug, docs/migration.md); every page counts as dirty again",
			 idx, lost);
	for (uint64_t i = 0; i < d->npages; i++)
		__atomic_fetch_or(&d->acc[i >> 6], 1ull << (i & 63), __ATOMIC_RELAXED);
	int r = set_logging(d, false);
	if (!r)
		r = set_logging(d, true);
	if (r) {
		log_error("re-arming dirty logging: %s; the dirty log is no longer complete", strerror(-r));
		d->broken = true;
	}
}

/* With the lock held: harvest ring idx and have KVM reset it, keeping track
 * of KVM's reset index from the counts KVM_RESET_DIRTY_RINGS returns (only
 * this ring has harvested entries not yet reset: every harvest is followed
 * by a reset under the lock). KVM stops resetting at the first entry not
 * flagged RESET; if that is short of Ember's fetch index, KVM overwrote an
 * entry Ember had harvested (an overrun, see rebaseline()): harvest again
 * from KVM's index. Returns the entries harvested. */
static uint64_t harvest_and_reset(struct dirty *d, unsigned idx)
{
	struct dirty_ring *ring = &d->rings[idx];
	uint64_t got = 0;
	for (int tries = 0; tries < 4; tries++) {
		got += harvest_ring(d, idx);
		int r = reset_rings(d);
		if (r < 0) {
			ring->kvm_reset = ring->fetch;   /* unknown: trust our own index */
			break;
		}
		ring->kvm_reset += (uint32_t)r;
		if (ring->kvm_reset == ring->fetch)
			break;
		/* KVM's index behind ours: redo from there. */
		ring->redo_until = ring->fetch;
		ring->fetch = ring->kvm_reset;
		rebaseline(d, idx, 0);
	}
	return got;
}

/* With the lock held: fetch region i's KVM bitmap into acc. */
static int fetch_bitmap(struct dirty *d, int i)
{
	const struct mem_region *reg = &d->vm->mem.regions[i];
	uint64_t pages = reg->size / PAGE_SIZE;
	struct kvm_dirty_log log = { .slot = (uint32_t)i, .dirty_bitmap = d->scratch };
	if (ioctl(d->vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return -errno;
	uint64_t base = reg->offset / PAGE_SIZE;
	for (uint64_t w = 0; w < WORDS(pages); w++) {
		uint64_t bits = d->scratch[w];
		if (!bits)
			continue;
		if ((base & 63) == 0) {
			d->acc[(base >> 6) + w] |= bits;
		} else {
			for (unsigned b = 0; b < 64; b++)
				if (bits >> b & 1)
					bit_set(d->acc, base + w * 64 + b);
		}
	}
	return 0;
}

int dirty_sync(struct dirty *d, uint64_t *out)
{
	uint64_t t0 = now_ns();
	int r = 0;
	pthread_mutex_lock(&d->lock);
	if (!d->active) {
		pthread_mutex_unlock(&d->lock);
		return -EINVAL;
	}
	if (d->backend == DIRTY_RING) {
		for (unsigned i = 0; i < d->nrings; i++) {
			uint64_t got = harvest_and_reset(d, i);
			if (d->limit_pps && got)
				throttle_charge(d, (int)i, got);
		}
	} else {
		for (int i = 0; i < d->vm->mem.nregions && !r; i++)
			r = fetch_bitmap(d, i);
	}
	uint64_t n = 0;
	for (uint64_t w = 0; w < WORDS(d->npages); w++) {
		uint64_t bits = __atomic_exchange_n(&d->acc[w], 0, __ATOMIC_ACQ_REL) |
				__atomic_exchange_n(&d->ember[w], 0, __ATOMIC_ACQ_REL);
		out[w] |= bits;
		n += (uint64_t)__builtin_popcountll(bits);
	}
	if (d->backend == DIRTY_BITMAP && d->limit_pps && n)
		throttle_charge(d, -1, n);
	d->stats.syncs++;
	d->stats.pages = n;
	d->stats.sync_ns = now_ns() - t0;
	pthread_mutex_unlock(&d->lock);
	return r;
}

void dirty_poll(struct dirty *d)
{
	if (d->backend != DIRTY_RING)
		return;
	uint64_t t0 = now_ns();
	bool any = false;
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nrings && d->active; i++) {
		struct dirty_ring *ring = &d->rings[i];
		if (!ring->gfns)
			continue;
		uint32_t probe = (ring->fetch + d->ring_entries / DIRTY_POLL_FRACTION) & (d->ring_entries - 1);
		if (!(__atomic_load_n(&ring->gfns[probe].flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
			continue;
		uint64_t got = harvest_and_reset(d, i);
		ring->polls++;
		if (d->limit_pps && got)
			throttle_charge(d, (int)i, got);
		any = true;
	}
	pthread_mutex_unlock(&d->lock);
	if (any)
		__atomic_fetch_add(&d->stats.track_ns, now_ns() - t0, __ATOMIC_RELAXED);
}

void dirty_rearm(struct dirty *d, const uint64_t *bits, uint64_t first, uint64_t n)
{
	if (d->backend != DIRTY_BITMAP || !d->manual_protect || !d->active)
		return;
	uint64_t t0 = now_ns();
	struct guest_mem *m = &d->vm->mem;
	pthread_mutex_lock(&d->lock);
	for (int i = 0; i < m->nregions; i++) {
		uint64_t base = m->regions[i].offset / PAGE_SIZE, pages = m->regions[i].size / PAGE_SIZE;
		uint64_t lo = first > base ? first : base, hi = first + n < base + pages ? first + n : base + pages;
		if (lo >= hi)
			continue;
		/* KVM_CLEAR_DIRTY_LOG: first_page a multiple of 64, num_pages too
		 * unless it reaches the end of the slot (api.rst 4.118). Regions
		 * start at multiples of 64 pages (the hole is 3 GiB). */
		uint64_t s = (lo - base) & ~63ull, e = hi - base;
		if (e & 63)
			e = (e | 63) + 1 < pages ? (e | 63) + 1 : pages;
		uint64_t words = WORDS(e - s);
		bool any = false;
		for (uint64_t w = 0; w < words; w++) {
			uint64_t src = base + s + w * 64;
			uint64_t v = 0;
			if ((src & 63) == 0)
				v = bits[src >> 6];
			else
				for (unsigned b = 0; b < 64; b++)
					if (src + b < d->npages && bit_test(bits, src + b))
						v |= 1ull << b;
			d->scratch[w] = v;
			any |= v != 0;
		}
		if (!any)
			continue;
		struct kvm_clear_dirty_log c = { .slot = (uint32_t)i, .num_pages = (uint32_t)(e - s),
						 .first_page = s, .dirty_bitmap = d->scratch };
		if (ioctl(d->vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &c) < 0)
			log_warn("KVM_CLEAR_DIRTY_LOG: %s", strerror(errno));
	}
	pthread_mutex_unlock(&d->lock);
	__atomic_fetch_add(&d->stats.track_ns, now_ns() - t0, __ATOMIC_RELAXED);
}

void dirty_stop(struct dirty *d)
{
	pthread_mutex_lock(&d->lock);
	if (d->active) {
		if (d->backend == DIRTY_RING) {
			for (unsigned i = 0; i < d->nrings; i++)
				harvest_and_reset(d, i);
		}
		int r = set_logging(d, false);
		if (r)
			log_warn("turning dirty logging off: %s", strerror(-r));
		__atomic_store_n(&d->vm->mem.dirty_log, NULL, __ATOMIC_RELEASE);
		d->active = false;
	}
	d->limit_pps = 0;
	for (unsigned i = 0; i < d->vm->ncpus; i++)
		__atomic_store_n(&d->vm->vcpus[i]->throttle_until_ns, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&d->lock);
}

void dirty_set_limit(struct dirty *d, uint64_t bytes_per_s)
{
	pthread_mutex_lock(&d->lock);
	d->limit_pps = bytes_per_s / PAGE_SIZE;
	if (bytes_per_s && !d->limit_pps)
		d->limit_pps = 1;
	uint64_t now = now_ns();
	d->global_allow_ns = now;
	for (unsigned i = 0; i < d->nrings; i++)
		d->rings[i].allow_ns = now;
	for (unsigned i = 0; i < d->vm->ncpus && !bytes_per_s; i++)
		__atomic_store_n(&d->vm->vcpus[i]->throttle_until_ns, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&d->lock);
}

/* Charge pages to a budget that refills at limit_pps: returns when the
 * budget is back to zero (the time to sleep until). */
static uint64_t charge(uint64_t *allow_ns, uint64_t pages, uint64_t limit_pps, uint64_t now)
{
	if (*allow_ns < now)
		*allow_ns = now;
	*allow_ns += pages * 1000000000ull / limit_pps;
	return *allow_ns;
}

static void sleep_until(struct vm *vm, uint64_t until)
{
	for (;;) {
		uint64_t now = now_ns();
		if (now >= until || __atomic_load_n(&vm->state, __ATOMIC_SEQ_CST) != VM_RUNNING)
			return;
		uint64_t ns = until - now < THROTTLE_SLICE_NS ? until - now : THROTTLE_SLICE_NS;
		struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
		nanosleep(&ts, NULL);
	}
}

void dirty_ring_full(struct dirty *d, struct vcpu *v)
{
	if (d->backend != DIRTY_RING || v->index >= d->nrings)
		return;
	uint64_t t0 = now_ns();
	pthread_mutex_lock(&d->lock);
	struct dirty_ring *ring = &d->rings[v->index];
	uint64_t got = harvest_and_reset(d, v->index);
	/* Full with nothing at our index, yet DIRTY entries further on: KVM
	 * pushed more than the ring holds (entries past the soft limit without
	 * exiting: kvm_pvm's CPL0 emulator), its reset then cleared the
	 * entries it had just overwritten and our index points at one of them.
	 * The vCPU is out of the guest, so its ring is still: step over the
	 * gap (flag it RESET so KVM's reset passes it too) and go on. */
	if (!got && ring->kvm_reset == ring->fetch) {
		uint32_t gap = dirty_ring_gap(ring->gfns, d->ring_entries, ring->fetch);
		if (gap && gap < d->ring_entries) {
			for (uint32_t k = 0; k < gap; k++)
				__atomic_store_n(&ring->gfns[(ring->fetch + k) & (d->ring_entries - 1)].flags,
						 KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
			ring->redo_until = ring->fetch + gap;
			rebaseline(d, v->index, gap);
			got = harvest_and_reset(d, v->index);
		}
	}
	/* Still nothing: KVM and Ember disagree about the ring in a way the
	 * above does not explain. Pages are being lost: say so, once; users
	 * of the log check dirty_broken() before trusting a copy. */
	if (!got && ++ring->empty_full_exits == 64 && !d->broken) {
		d->broken = true;
		log_error("dirty ring of vCPU %u: KVM reports it full but publishes no entries (at %u); the dirty "
			  "log is no longer complete: use --dirty-tracking bitmap", v->index, ring->fetch);
	} else if (got) {
		ring->empty_full_exits = 0;
	}
	ring->full_exits++;
	d->stats.ring_full_exits++;
	if (d->limit_pps && got)
		throttle_charge(d, (int)v->index, got);
	pthread_mutex_unlock(&d->lock);
	__atomic_fetch_add(&d->stats.track_ns, now_ns() - t0, __ATOMIC_RELAXED);
	dirty_throttle_point(d, v);
}

void dirty_throttle_point(struct dirty *d, struct vcpu *v)
{
	uint64_t until = __atomic_load_n(&v->throttle_until_ns, __ATOMIC_RELAXED);
	if (until && until > now_ns())
		sleep_until(d->vm, until);
}
