#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/backend.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "mem.h"

int map_file(const char *what, const char *path, struct file_map *f, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -errno;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_size == 0) {
		snprintf(err, errlen, "%s %s: file is empty", what, path);
		close(fd);
		return -EINVAL;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
		return -e;
	}
	f->data = p;
	f->size = (size_t)st.st_size;
	f->owned = true;
	return 0;
}

void unmap_file(struct file_map *f)
{
	if (f->data && f->owned)
		munmap((void *)f->data, f->size);
	f->data = NULL;
	f->owned = false;
}

int host_open_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		fprintf(stderr, "ember: error: /dev/kvm: %s (is KVM enabled and do you have access?)\n",
			strerror(e));
		return -e;
	}
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		fprintf(stderr, "ember: error: /dev/kvm: unsupported KVM API version\n");
		close(fd);
		return -ENOTSUP;
	}
	return fd;
}

int host_files_open(struct host_files *h, const struct vm_config *cfg)
{
	memset(h, 0, sizeof(*h));
	h->kvm_fd = -1;
	mem_thp_host_setting(h->shmem_thp, sizeof(h->shmem_thp));
	char err[512];
	/* --restore and --incoming take the machine from the state: no kernel. */
	if ((cfg->kernel && map_file("kernel", cfg->kernel, &h->kernel, err, sizeof(err))) ||
	    (cfg->initrd && map_file("initrd", cfg->initrd, &h->initrd, err, sizeof(err)))) {
		fprintf(stderr, "ember: error: %s\n", err);
		host_files_close(h);
		return EXIT_USAGE;
	}
	for (; h->ndisks < cfg->ndisks; h->ndisks++) {
		const struct disk_config *d = &cfg->disks[h->ndisks];
		int fd = virtio_blk_open_image(d->path, d->readonly, err, sizeof(err));
		if (fd < 0) {
			fprintf(stderr, "ember: error: %s\n", err);
			host_files_close(h);
			return EXIT_USAGE;
		}
		h->disk_fd[h->ndisks] = fd;
	}
	for (; h->ntaps < cfg->nnets; h->ntaps++) {
		int fd = tap_open(cfg->nets[h->ntaps].tap, h->tap_name[h->ntaps], err, sizeof(err));
		if (fd < 0) {
			fprintf(stderr, "ember: error: %s\n", err);
			host_files_close(h);
			return EXIT_USAGE;
		}
		h->tap_fd[h->ntaps] = fd;
	}
	return 0;
}

int host_files_open_kvm(struct host_files *h)
{
	h->kvm_fd = host_open_kvm();
	if (h->kvm_fd < 0)
		return EXIT_VMM_ERROR;
	h->backend = kvm_backend_name();
	return 0;
}

void host_files_close(struct host_files *h)
{
	if (h->kvm_fd >= 0)
		close(h->kvm_fd);
	h->kvm_fd = -1;
	unmap_file(&h->kernel);
	unmap_file(&h->initrd);
	for (unsigned i = 0; i < h->ndisks; i++)
		close(h->disk_fd[i]);
	for (unsigned i = 0; i < h->ntaps; i++)
		close(h->tap_fd[i]);
	h->ndisks = h->ntaps = 0;
}
