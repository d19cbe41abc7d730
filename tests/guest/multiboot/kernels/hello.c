/* The smallest multiboot test: boots, prints, passes. The trivial kernel of
 * the benchmark (bench/kut.sh). */
#include "kit.h"

int kmain(int argc, char **argv)
{
	report(mb_magic == 0x2BADB002, "entered with the multiboot magic");
	return report_summary();
}
