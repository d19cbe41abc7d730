/* libFuzzer target: the device sections of a snapshot or migration stream
 * as a restore loads them into devices: the PCI host bridge and the
 * virtio-blk, -net, -rng and -balloon functions (config space, MSI-X table
 * and PBA, INTx level, transport registers, features, queues with their
 * ring addresses, indexes and vectors, the backends' fields), in the world
 * of fuzz_pci_world.h. (fuzz_state fuzzes the stream reader itself.)
 *
 * Every section carries CRCs, so raw bytes would rarely get past the
 * reader. The input is instead a list of edits to a real save, taken once
 * with every driver set up (MSI-X, EVENT_IDX, INDIRECT_DESC, all device
 * features) and a request done on each device: the harness writes the
 * edited stream (framing and CRCs valid), restores it into freshly reset
 * devices with guest RAM as it was at the save, and runs them: loop turns,
 * every queue kicked, every MSI-X vector fired, a frame from the network,
 * the transport and device config read back. A load may be refused;
 * nothing may crash, touch memory outside guest RAM, or leave a device
 * that fails world_check.
 *
 * Each edit is 8 bytes { le16 field (an index into the save's fields, mod
 * their count), op, arg, le32 value }; op & 7:
 *   0 the value's low 32 bits := value     1 its high 32 bits := value
 *   2 flip bit value % (8 * length)         3 drop the field
 *   4 write the field twice                 5 blob: byte arg % length := value
 *   6 blob: cut to arg bytes, or (value bit 0) arg bytes longer;
 *     a number: written as a blob of its bytes (a type the loader does not expect)
 *   7 the field's section: arg & 3 = 0 version := value % 4, 1 instance :=
 *     value % 4, 2 drop it, 3 write it twice */
#include "fuzz_pci_world.h"

#include "migration/devstate.h"
#include "migration/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FIELDS   1024
#define MAX_SECTIONS 8
#define POOL         (64 * 1024)
#define BLOB_GROW    255

struct field {
	uint16_t tag;
	uint8_t type, flags;
	uint32_t len;
	uint32_t at;             /* value bytes in the pool */
	unsigned section;
	/* Edits of this run. */
	bool drop, twice, as_blob;
	uint32_t out_len;
};

struct section {
	char name[STATE_NAME_MAX + 1];
	uint32_t instance, version;          /* as this run writes them */
	uint32_t instance0, version0;        /* as saved */
	bool drop, twice;
	bool edited;                         /* this run edits it: written again */
	struct state_buf plain;              /* as written unedited: header and payload */
};

static struct {
	struct devstate ds;
	struct field f[MAX_FIELDS];
	unsigned nf;
	struct section s[MAX_SECTIONS];
	unsigned ns;
	uint8_t pool[POOL], work[POOL];
	uint32_t used;
	uint8_t ram[W_RAM];        /* guest RAM at the save */
	bool ready;
} g;

/* Record every field of every section of the save. */
static int capture(void *opaque, struct state_reader *r)
{
	CHECK(g.ns < MAX_SECTIONS);
	struct section *s = &g.s[g.ns];
	memcpy(s->name, r->name, sizeof(s->name));
	s->instance = s->instance0 = r->instance;
	s->version = s->version0 = r->version;
	while (r->len - r->pos >= 8) {
		const uint8_t *h = r->p + r->pos;
		struct field *f = &g.f[g.nf++];
		CHECK(g.nf <= MAX_FIELDS);
		memcpy(&f->tag, h, 2);
		f->type = h[2];
		f->flags = h[3];
		memcpy(&f->len, h + 4, 4);
		f->section = g.ns;
		CHECK(f->len <= r->len - r->pos - 8 && g.used + f->len <= POOL);
		f->at = g.used;
		memcpy(g.pool + g.used, h + 8, f->len);
		g.used += f->len;
		r->pos += 8 + ((f->len + 7u) & ~7u);
	}
	g.ns++;
	return 0;
}

/* One descriptor chain at the head of queue q's ring (base as driver_init
 * is given it, queue size 16). */
static void put_chain(uint64_t base, unsigned q, const struct vring_desc *d, unsigned n)
{
	uint64_t desc, avail, used;
	w_ring_layout(base, q, 16, &desc, &avail, &used);
	CHECK(mem_write(&w.mem, desc, d, n * sizeof(*d)) == 0);
	uint16_t a[3] = { 0, 1, 0 };
	CHECK(mem_write(&w.mem, avail, a, sizeof(a)) == 0);
}

static void write_section(struct state_writer *wr, unsigned si);

/* The save every input edits: each device running, a request done. */
static void make_base(void)
{
	world_reset();
	CHECK(devstate_register(&g.ds, &pci_host_state_ops, 0, &w.host) == 0);
	for (unsigned v = 0; v < V_COUNT; v++)
		CHECK(devstate_register(&g.ds, virtio_state_ops(w.vd[v]), 0, w.vd[v]) == 0);
	static const uint8_t flush[16] = { VIRTIO_BLK_T_FLUSH };
	static const uint32_t pfns[2] = { 0x30, 0x31 };
	CHECK(mem_write(&w.mem, 0x20000, flush, sizeof(flush)) == 0);
	CHECK(mem_write(&w.mem, 0x21000, pfns, sizeof(pfns)) == 0);
	struct vring_desc blk[2] = { { 0x20000, 16, VRING_DESC_F_NEXT, 1 }, { 0x20100, 1, VRING_DESC_F_WRITE, 0 } };
	struct vring_desc rng = { 0x22000, 64, VRING_DESC_F_WRITE, 0 };
	struct vring_desc tx = { 0x23000, 72, 0, 0 }, inflate = { 0x21000, 8, 0, 0 };
	put_chain(0x0000, 0, blk, 2);
	put_chain(0x4000, 1, &tx, 1);
	put_chain(0x8000, 0, &rng, 1);
	put_chain(0xc000, 0, &inflate, 1);
	for (unsigned v = 0; v < V_COUNT; v++) {
		w_driver_init(w.vd[v], 16, 3, 0xff, true, 0x4000 * v);
		for (unsigned q = 0; q < w.vd[v]->nqueues; q++)
			w_cw(w.vd[v], VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * q, 2, q);
	}
	w_settle();
	w_drain(w.net_peer);
	balloon_set_target(w.vd[V_BALLOON], 8 * 4096);
	for (unsigned v = 0; v < V_COUNT; v++)
		CHECK(w.vd[v]->status == 0xf && !w.vd[v]->broken);
	memcpy(g.ram, w.mem.host, W_RAM);

	/* Paused, as a save is taken. */
	devstate_quiesce(&g.ds);
	struct state_buf buf = { 0 };
	struct state_writer wr;
	CHECK(state_writer_init(&wr, state_buf_sink(&buf)) == 0);
	CHECK(devstate_save(&g.ds, &wr) == 0);
	CHECK(state_writer_finish(&wr) == 0);
	state_writer_destroy(&wr);
	devstate_resume(&g.ds);
	struct state_loader all = { STATE_ANY_SECTION, UINT32_MAX, capture, NULL };
	char err[256];
	buf.pos = 0;
	if (state_load(state_buf_source(&buf), &all, 1, err, sizeof(err))) {
		fprintf(stderr, "the save does not load: %s\n", err);
		abort();
	}
	state_buf_free(&buf);
	CHECK(g.ns == 1 + V_COUNT);
	/* Most inputs edit a section or two: the others go out as these
	 * bytes, which are what write_section makes of them unedited. */
	memcpy(g.work, g.pool, g.used);
	for (unsigned i = 0; i < g.nf; i++)
		g.f[i].out_len = g.f[i].len;
	for (unsigned i = 0; i < g.ns; i++) {
		struct state_writer one;
		CHECK(state_writer_init(&one, state_buf_sink(&g.s[i].plain)) == 0);
		write_section(&one, i);
		CHECK(one.err == 0);
		state_writer_destroy(&one);
	}
	g.ready = true;
}

static void edit(const uint8_t *e)
{
	uint16_t idx;
	uint32_t value;
	memcpy(&idx, e, 2);
	memcpy(&value, e + 4, 4);
	struct field *f = &g.f[idx % g.nf];
	uint8_t op = e[2] & 7, arg = e[3];
	uint8_t *p = g.work + f->at;
	g.s[f->section].edited = true;
	switch (op) {
	case 0:
	case 1: {
		uint64_t v = 0;
		memcpy(&v, p, f->len < 8 ? f->len : 8);
		v = op ? (v & 0xffffffffULL) | (uint64_t)value << 32 : (v & ~0xffffffffULL) | value;
		memcpy(p, &v, f->len < 8 ? f->len : 8);
		break;
	}
	case 2:
		if (f->len)
			p[value / 8 % f->len] ^= (uint8_t)(1u << (value % 8));
		break;
	case 3: f->drop = true; break;
	case 4: f->twice = true; break;
	case 5:
		if (f->len)
			p[arg % f->len] = (uint8_t)value;
		break;
	case 6:
		if (f->type != ST_BLOB)
			f->as_blob = true;
		else if (value & 1)
			f->out_len = f->len + arg;
		else
			f->out_len = arg < f->len ? arg : f->len;
		break;
	default: {
		struct section *s = &g.s[f->section];
		switch (arg & 3) {
		case 0: s->version = value % 4; break;
		case 1: s->instance = value % 4; break;
		case 2: s->drop = true; break;
		default: s->twice = true; break;
		}
	}
	}
}

static void put(struct state_writer *wr, const struct field *f)
{
	static uint8_t blob[POOL + BLOB_GROW];
	const uint8_t *p = g.work + f->at;
	uint64_t v = 0;
	memcpy(&v, p, f->len < 8 ? f->len : 8);
	if (f->type == ST_BLOB || f->as_blob) {
		uint32_t n = f->type == ST_BLOB ? f->out_len : f->len;
		memset(blob, 0, n);
		memcpy(blob, p, n < f->len ? n : f->len);
		state_put_blob(wr, f->tag, blob, n);
		return;
	}
	bool vol = f->flags & SF_VOLATILE;
	switch (f->type) {
	case ST_U8: state_put_u8(wr, f->tag, (uint8_t)v); break;
	case ST_U16: state_put_u16(wr, f->tag, (uint16_t)v); break;
	case ST_U32:
		if (vol)
			state_put_u32_volatile(wr, f->tag, (uint32_t)v);
		else
			state_put_u32(wr, f->tag, (uint32_t)v);
		break;
	default:
		if (vol)
			state_put_u64_volatile(wr, f->tag, v);
		else
			state_put_u64(wr, f->tag, v);
		break;
	}
}

static void write_section(struct state_writer *wr, unsigned si)
{
	const struct section *s = &g.s[si];
	if (state_begin_section(wr, s->name, s->instance, s->version))
		return;
	for (unsigned i = 0; i < g.nf; i++) {
		const struct field *f = &g.f[i];
		if (f->section != si || f->drop)
			continue;
		put(wr, f);
		if (f->twice)
			put(wr, f);
	}
	state_end_section(wr);
}

static int restore(void *opaque, struct state_reader *r)
{
	return devstate_load(&g.ds, r);
}

/* After the restore: what a resumed guest and its backends would do. */
static void run_devices(void)
{
	devstate_resume(&g.ds);
	w_settle();
	for (unsigned v = 0; v < V_COUNT; v++) {
		struct virtio_dev *vd = w.vd[v];
		for (unsigned q = 0; q < vd->nqueues; q++)
			virtio_kick(vd, q);
		for (unsigned i = 0; i <= vd->pci.msix.nvec; i++)
			pci_msix_notify(&vd->pci, i);
		for (unsigned off = 0; off < VIRTIO_PCI_COMMON_Q_USEDHI + 4; off += 4)
			w_cr(vd, off, 4);
		w_cr(vd, VIRTIO_PCI_COMMON_STATUS, 1);
		w_cr(vd, VIRTIO_ISR_OFF, 1);
		for (unsigned off = 0; off < vd->config_len; off += 4)
			w_cr(vd, VIRTIO_DEVCFG_OFF + off, 4);
	}
	static const uint8_t frame[64] = { [12] = 0xff, [13] = 0xff };
	send(w.net_peer, frame, sizeof(frame), MSG_DONTWAIT);
	w_settle();
	w_drain(w.net_peer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g.ready)
		make_base();
	world_reset();
	memcpy(w.mem.host, g.ram, W_RAM);
	memcpy(g.work, g.pool, g.used);
	for (unsigned i = 0; i < g.nf; i++) {
		struct field *f = &g.f[i];
		f->drop = f->twice = f->as_blob = false;
		f->out_len = f->len;
	}
	for (unsigned i = 0; i < g.ns; i++) {
		g.s[i].drop = g.s[i].twice = g.s[i].edited = false;
		g.s[i].instance = g.s[i].instance0;
		g.s[i].version = g.s[i].version0;
	}
	for (size_t i = 0; i + 8 <= size; i += 8)
		edit(data + i);

	struct state_buf buf = { 0 };
	struct state_writer wr;
	CHECK(state_writer_init(&wr, state_buf_sink(&buf)) == 0);
	for (unsigned i = 0; i < g.ns; i++) {
		const struct section *sec = &g.s[i];
		for (int n = 0; !sec->drop && n < 1 + sec->twice; n++) {
			if (sec->edited)
				write_section(&wr, i);
			else      /* past the stream header the writer put first */
				wr.sink.write(wr.sink.opaque, sec->plain.data + 16, sec->plain.len - 16);
		}
	}
	state_writer_finish(&wr);
	state_writer_destroy(&wr);

	struct state_loader all = { STATE_ANY_SECTION, UINT32_MAX, restore, NULL };
	char err[256];
	devstate_reset_loaded(&g.ds);
	buf.pos = 0;
	state_load(state_buf_source(&buf), &all, 1, err, sizeof(err));
	state_buf_free(&buf);
	world_check();
	run_devices();
	world_check();
	return 0;
}
