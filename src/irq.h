/* An interrupt line as a device sees it: devices raise and lower lines
 * without knowing KVM (DESIGN rule 1). The VM provides the implementation
 * (KVM_IRQ_LINE); tests provide a fake. */
#ifndef EMBER_IRQ_H
#define EMBER_IRQ_H

struct irq_line {
	void (*set_level)(struct irq_line *line, int level);
	unsigned gsi;
	void *opaque;
};

static inline void irq_set(struct irq_line *line, int level)
{
	if (line && line->set_level)
		line->set_level(line, level);
}

/* Edge: raise then lower (for edge-triggered ISA lines). */
static inline void irq_pulse(struct irq_line *line)
{
	irq_set(line, 1);
	irq_set(line, 0);
}

#endif
