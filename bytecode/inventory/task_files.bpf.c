// task_files is a BPF iterator over every process's open files (the kernel's
// task_file iterator visits each process once, skipping threads that share
// their leader's file table). For each file that is a BPF program, map or
// link it writes one record: the holding process's pid (in the initial pid
// namespace), the descriptor, the kind of object and its kernel id, and the
// process's name. bpftool's pid_iter does the same to show the pids of
// `bpftool prog show`; this one tells BPF files apart by the name the kernel
// gives their anonymous inode ("bpf-prog", "bpf-map", "bpf_link") rather
// than by their file operations, whose addresses /proc/kallsyms lists only
// on kernels built with CONFIG_KALLSYMS_ALL.
//
// The kernel's structures are declared here with only the fields read, and
// preserve_access_index: their offsets are relocated against the running
// kernel's BTF when the iterator is loaded (CO-RE).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define PRESERVE __attribute__((preserve_access_index))

/* ANON_INODE_FS_MAGIC: the file system of anonymous inodes. */
#define ANON_INODE_FS_MAGIC 0x09041934

/* The kinds of object a record names; pkg/runtime/inventory reads them. */
enum {
	KIND_PROG = 1,
	KIND_MAP = 2,
	KIND_LINK = 3,
};

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
} PRESERVE;

struct super_block {
	unsigned long s_magic;
} PRESERVE;

struct inode {
	struct super_block *i_sb;
} PRESERVE;

struct qstr {
	const unsigned char *name;
} PRESERVE;

struct dentry {
	struct qstr d_name;
} PRESERVE;

struct path {
	struct dentry *dentry;
} PRESERVE;

struct file {
	struct path f_path;
	struct inode *f_inode;
	void *private_data;
} PRESERVE;

struct task_struct {
	int tgid;
	char comm[16];
} PRESERVE;

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} PRESERVE;

struct bpf_prog_aux {
	__u32 id;
} PRESERVE;

struct bpf_prog {
	struct bpf_prog_aux *aux;
} PRESERVE;

struct bpf_map {
	__u32 id;
} PRESERVE;

struct bpf_link {
	__u32 id;
} PRESERVE;

/* record is what the iterator writes for each BPF file; 32 bytes. */
struct record {
	__u32 pid;
	__u32 fd;
	__u32 kind;
	__u32 id;
	char comm[16];
};

/* same reports whether the n bytes at a and b are equal. */
static __always_inline int same(const char *a, const char *b, int n)
{
#pragma unroll
	for (int i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* kind_of returns the kind of BPF object an anonymous inode of this name
 * holds, 0 for any other; len counts the name's terminating NUL. */
static __always_inline __u32 kind_of(const char *name, long len)
{
	if (len == 9 && same(name, "bpf-prog", 9))
		return KIND_PROG;
	if (len == 8 && same(name, "bpf-map", 8))
		return KIND_MAP;
	if (len == 9 && same(name, "bpf_link", 9))
		return KIND_LINK;
	return 0;
}

SEC("iter/task_file")
int task_files(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct record r = {};
	char n[16] = {};
	const unsigned char *name;
	void *obj;
	long len;

	if (!task || !file)
		return 0;
	if (file->f_inode->i_sb->s_magic != ANON_INODE_FS_MAGIC)
		return 0;
	name = file->f_path.dentry->d_name.name;
	len = bpf_probe_read_kernel_str(n, sizeof(n), name);
	r.kind = kind_of(n, len);
	if (!r.kind)
		return 0;

	/* private_data is a void pointer to the verifier: the object behind
	 * it is read with bpf_probe_read_kernel, its offsets relocated. */
	obj = file->private_data;
	switch (r.kind) {
	case KIND_PROG:
		r.id = BPF_CORE_READ((struct bpf_prog *)obj, aux, id);
		break;
	case KIND_MAP:
		r.id = BPF_CORE_READ((struct bpf_map *)obj, id);
		break;
	case KIND_LINK:
		r.id = BPF_CORE_READ((struct bpf_link *)obj, id);
		break;
	}
	r.pid = task->tgid;
	r.fd = ctx->fd;
	bpf_probe_read_kernel_str(r.comm, sizeof(r.comm), task->comm);
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
