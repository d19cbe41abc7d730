/* An AML encoder (ACPI 6.5 §20, resource descriptors §6.4) for the DSDT:
 * each constructor returns a node, aml_append() nests a node in another
 * (a Device in a Scope, a Name in a Device, a descriptor in a resource
 * template) and encodes it there, PkgLength and all, so a table reads as
 * the ASL it stands for. Errors stick: a constructor returns NULL when out
 * of memory, a node given a NULL child or an invalid one (a bad name, a
 * descriptor outside a resource template, anything inside a descriptor) is
 * marked failed, and aml_take() reports the first error for the whole
 * tree. */
#ifndef EMBER_X86_AML_H
#define EMBER_X86_AML_H

#include <stddef.h>
#include <stdint.h>

struct aml;

/* An empty term list: the body of a definition block. */
struct aml *aml_new(void);

/* Data objects. aml_int picks the shortest encoding: ZeroOp, OneOp, OnesOp
 * (all 64 bits set: the DSDT is revision 2), or a Byte/Word/DWord/QWord
 * prefix. aml_eisaid compresses a "PNP0A08"-style ID into a DWord. */
struct aml *aml_int(uint64_t v);
struct aml *aml_string(const char *s);
struct aml *aml_eisaid(const char *id);
/* A NameString as an object (a reference): "\\_SB.PCI0", "^GSIA", "_HID";
 * segments of fewer than four characters are padded with '_'. */
struct aml *aml_name(const char *path);
/* Package: its elements are appended; NumElements counts them (at most 255). */
struct aml *aml_package(void);

/* Name (name, value), taking value. */
struct aml *aml_name_decl(const char *name, struct aml *value);
/* Blocks whose terms are appended. */
struct aml *aml_scope(const char *path);
struct aml *aml_device(const char *name);
struct aml *aml_method(const char *name, unsigned nargs);   /* NotSerialized */

/* ResourceTemplate (): a Buffer of the appended descriptors, closed by an
 * EndTag whose checksum makes the descriptors sum to zero. */
struct aml *aml_resource_template(void);
/* IO (Decode16, min, max, align, len) */
struct aml *aml_io(uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* IRQNoFlags () {irq}: edge, active high, exclusive; irq < 16 */
struct aml *aml_irq_no_flags(unsigned irq);
/* Interrupt (ResourceConsumer, ...) {gsi}; flags from below (0: level,
 * active high, exclusive). */
#define AML_INTR_EDGE       (1u << 1)
#define AML_INTR_ACTIVE_LOW (1u << 2)
#define AML_INTR_SHARED     (1u << 3)
struct aml *aml_interrupt(unsigned flags, uint32_t gsi);
/* Memory32Fixed (ReadWrite, base, len) */
struct aml *aml_memory32_fixed(uint32_t base, uint32_t len);
/* The address space descriptors a root bridge produces: ResourceProducer,
 * PosDecode, MinFixed, MaxFixed, granularity and translation 0, length
 * max - min + 1; I/O with EntireRange, memory NonCacheable, ReadWrite
 * (device registers, not RAM). */
struct aml *aml_word_bus_number(uint16_t min, uint16_t max);
struct aml *aml_word_io(uint16_t min, uint16_t max);
struct aml *aml_dword_memory(uint32_t min, uint32_t max);
struct aml *aml_qword_memory(uint64_t min, uint64_t max);

/* Encode child at the end of parent and free child; returns parent (NULL
 * when parent is NULL: child is freed all the same). */
struct aml *aml_append(struct aml *parent, struct aml *child);
struct aml *aml_append_all(struct aml *parent, struct aml *const *children, size_t n);
/* aml_with(parent, child, child, ...): parent with every child appended in
 * order, so nested blocks read like ASL. */
#define aml_with(parent, ...)                                                   \
	aml_append_all((parent), (struct aml *const[]){ __VA_ARGS__ },          \
		       sizeof((struct aml *const[]){ __VA_ARGS__ }) / sizeof(struct aml *))

/* The bytes a node encodes to (a block with its opcode and PkgLength),
 * malloc'd into *bytes; frees the node. 0, -ENOMEM or -EINVAL (a bad name,
 * a descriptor outside a resource template, too many package elements). */
int aml_take(struct aml *a, uint8_t **bytes, size_t *len);
void aml_free(struct aml *a);

#endif
