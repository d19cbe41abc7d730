/* Which kernel module backs /dev/kvm, and what that means for the guest. */
#ifndef EMBER_X86_BACKEND_H
#define EMBER_X86_BACKEND_H

#include <stdbool.h>

/* "kvm_pvm", "kvm_intel", "kvm_amd" or "kvm" when none is recognized. */
const char *kvm_backend_name(void);
/* True when guest kernel-mode code runs on hardware virtualization. */
bool kvm_backend_is_hardware(const char *name);
/* Say once per process what the backend means for the guest. */
void kvm_backend_announce(const char *name);

#endif
