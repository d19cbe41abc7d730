#include "arch/x86/backend.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Looked up once: a jailed Ember no longer sees /sys. */
const char *kvm_backend_name(void)
{
	static const char *const modules[] = { "kvm_pvm", "kvm_intel", "kvm_amd" };
	static const char *name;
	if (name)
		return name;
	char path[64];
	for (unsigned i = 0; i < sizeof(modules) / sizeof(modules[0]) && !name; i++) {
		snprintf(path, sizeof(path), "/sys/module/%s", modules[i]);
		if (access(path, F_OK) == 0)
			name = modules[i];
	}
	if (!name)
		name = "kvm";
	return name;
}

bool kvm_backend_is_hardware(const char *name)
{
	return !strcmp(name, "kvm_intel") || !strcmp(name, "kvm_amd");
}

void kvm_backend_announce(const char *name)
{
	static int said;
	if (said++)
		return;
	if (!strcmp(name, "kvm_pvm"))
		log_warn("/dev/kvm is kvm_pvm (no hardware virtualization): guest kernel-mode code is "
			 "emulated and slow, and some instructions (cmpxchg16b, xsave/xrstor) fail there; "
			 "guest user-mode code runs at native speed");
	else
		log_info("/dev/kvm backend: %s", name);
}
