/* Entering the jail: mount namespace + pivot_root, then the identity. */
#include "sandbox/jail.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *what, int e)
{
	snprintf(err, errlen, "%s: %s", what, strerror(e));
	return -e;
}

/* DIR becomes / of a private mount namespace, read-only, nothing of the
 * host's tree left under it. pivot_root(".", ".") stacks the old root on
 * top of the new one, and unmounting it leaves the new one alone. */
static int new_root(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	if (stat(dir, &st) < 0)
		return fail(err, errlen, "the directory", errno);
	if (!S_ISDIR(st.st_mode))
		return fail(err, errlen, "the directory", ENOTDIR);
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		return fail(err, errlen, "unshare (a new mount namespace needs root)", errno);
	/* Nothing done here may reach the host's mount table. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(err, errlen, "making / private", errno);
	if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(err, errlen, "bind-mounting it", errno);
	if (mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		return fail(err, errlen, "making it read-only", errno);
	if (chdir(dir) < 0)
		return fail(err, errlen, "chdir", errno);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(err, errlen, "pivot_root", errno);
	if (umount2(".", MNT_DETACH) < 0)
		return fail(err, errlen, "unmounting the host's root", errno);
	if (chdir("/") < 0)
		return fail(err, errlen, "chdir /", errno);
	return 0;
}

/* No capability left in any set, none to regain. The bounding set goes
 * first, while CAP_SETPCAP is still there. */
static int drop_identity(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
			break;   /* past the last capability this kernel knows */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail(err, errlen, "clearing ambient capabilities", errno);
	if (setgroups(0, NULL) < 0)
		return fail(err, errlen, "setgroups", errno);
	if (setresgid(gid, gid, gid) < 0)
		return fail(err, errlen, "setresgid", errno);
	if (setresuid(uid, uid, uid) < 0)
		return fail(err, errlen, "setresuid", errno);
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		return fail(err, errlen, "capset", errno);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, "no_new_privs", errno);
	/* Other processes of the same user cannot ptrace Ember or read its
	 * memory through /proc, and it dumps no core. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail(err, errlen, "PR_SET_DUMPABLE", errno);
	if (setuid(0) == 0 || getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid)
		return fail(err, errlen, "the user did not change", EPERM);
	return 0;
}

static int limits(char *err, size_t errlen)
{
	struct rlimit core = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &core) < 0)
		return fail(err, errlen, "RLIMIT_CORE", errno);
	/* Both limits JAIL_NOFILE, or the hard limit where it is lower: the
	 * soft one too, which a host may start lower (init's 1024 of 4096). */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
		if (nofile.rlim_max == RLIM_INFINITY || nofile.rlim_max > JAIL_NOFILE)
			nofile.rlim_max = JAIL_NOFILE;
		nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
			return fail(err, errlen, "RLIMIT_NOFILE", errno);
	}
	return 0;
}

int jail_enter(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char why[256];
	int r = new_root(dir, why, sizeof(why));
	if (!r)
		r = limits(why, sizeof(why));
	if (!r)
		r = drop_identity(uid, gid, why, sizeof(why));
	if (r)
		snprintf(err, errlen, "--jail %s: %s", dir, why);
	return r;
}
