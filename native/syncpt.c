/*
 * syncpt: emits kvmsync sync points into an ftrace trace_marker (docs/bundle.md, "Sync points").
 *
 *   syncpt [-n N] [-k cpuid|pio] [-m /path/to/trace_marker]
 *   syncpt --marker TEXT [-m /path/to/trace_marker]
 *
 * For each CPU the process may run on, in turn, it pins itself there (sched_setaffinity) and makes
 * N points. A point is: t0 = TSC; one instruction that exits to the hypervisor; t1 = TSC; then the
 * line "kvmsync seq=S cpu=C kind=K t0=T0 t1=T1" (decimal) is written to the marker. The host sees
 * the exit (kvm_exit reason CPUID on VMX/SVM, or kvm_pio for an OUT to port 0xe9) at a host TSC
 * that must lie in [t0, t1] once mapped to the guest clock: that is the evidence a merge checks.
 *
 * kind=cpuid: CPUID leaf 0, which always exits under VMX/SVM (but is emulated silently by some
 *             software hypervisors such as kvm-pvm).
 * kind=pio:   OUT of one byte to port 0xe9 (QEMU's unused debug port unless isa-debugcon sits
 *             there), after ioperm(0xe9); needs CAP_SYS_RAWIO.
 *
 * --marker TEXT: no sync points; one line "kvmmark tsc=T cpu=C text=TEXT" for an application that
 *             marks its own moment, T read just before the write (TEXT: one line, under 3 KiB).
 *
 * Exit status: 0 when every point was written, 1 on a usage error, 2 when the marker, ioperm or
 * affinity failed. Static build: see the Makefile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <unistd.h>
#include "tsc.h"

#define SYNC_PORT 0xe9
#define DEFAULT_MARKER "/sys/kernel/tracing/trace_marker"

enum kind { KIND_CPUID, KIND_PIO };

static void usage(FILE *f)
{
	fprintf(f, "usage: syncpt [-n N] [-k cpuid|pio] [-m TRACE_MARKER]\n"
		   "  -n N   sync points per CPU (default 20)\n"
		   "  -k K   exit used: cpuid (default), pio (OUT to port 0xe9), or both: pio,cpuid\n"
		   "  -m F   trace_marker to write to (default " DEFAULT_MARKER ")\n"
		   "  --marker TEXT  write one \"kvmmark tsc=T cpu=C text=TEXT\" line instead of sync points\n");
}

/* One exit to the hypervisor of the given kind. */
static void do_exit_insn(enum kind k)
{
	if (k == KIND_CPUID) {
		uint32_t a = 0, b, c = 0, d;
		__asm__ __volatile__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d) : : "memory");
	} else {
		__asm__ __volatile__("outb %b0, %w1" : : "a"((uint8_t)'.'), "Nd"((uint16_t)SYNC_PORT) : "memory");
	}
}

/* Writes one whole line to the marker fd; a short write is an error (the marker takes a line whole). */
static int write_line(int fd, const char *buf, size_t len)
{
	ssize_t w = write(fd, buf, len);
	return w == (ssize_t)len ? 0 : -1;
}

int main(int argc, char **argv)
{
	long n = 20;
	enum kind kinds[2] = { KIND_CPUID };
	int nkinds = 1;
	const char *marker = DEFAULT_MARKER;
	const char *mark = NULL;
	int opt;
	static const struct option longopts[] = { { "marker", required_argument, NULL, 'M' }, { NULL, 0, NULL, 0 } };

	while ((opt = getopt_long(argc, argv, "n:k:m:h", longopts, NULL)) != -1) {
		char *end;
		switch (opt) {
		case 'n':
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno || *end || n < 1 || n > 1000000) {
				fprintf(stderr, "syncpt: -n wants a count from 1 to 1000000, not \"%s\"\n", optarg);
				return 1;
			}
			break;
		case 'k':
			if (strcmp(optarg, "cpuid") == 0)
				kinds[0] = KIND_CPUID, nkinds = 1;
			else if (strcmp(optarg, "pio") == 0)
				kinds[0] = KIND_PIO, nkinds = 1;
			else if (strcmp(optarg, "pio,cpuid") == 0)
				kinds[0] = KIND_PIO, kinds[1] = KIND_CPUID, nkinds = 2;
			else if (strcmp(optarg, "cpuid,pio") == 0)
				kinds[0] = KIND_CPUID, kinds[1] = KIND_PIO, nkinds = 2;
			else {
				fprintf(stderr, "syncpt: -k wants cpuid, pio or pio,cpuid, not \"%s\"\n", optarg);
				return 1;
			}
			break;
		case 'm':
			marker = optarg;
			break;
		case 'M':
			mark = optarg;
			if (strchr(mark, '\n') || strlen(mark) > 3000) {
				fprintf(stderr, "syncpt: --marker wants one line of text under 3000 bytes\n");
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}

	int fd = open(marker, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "syncpt: cannot open trace marker %s: %s\n", marker, strerror(errno));
		return 2;
	}
	if (mark) {
		char line[3100];
		uint64_t t = tsc_read();
		int len = snprintf(line, sizeof line, "kvmmark tsc=%llu cpu=%d text=%s\n", (unsigned long long)t,
				   sched_getcpu(), mark);
		if (write_line(fd, line, (size_t)len) != 0) {
			fprintf(stderr, "syncpt: write to %s failed: %s\n", marker, strerror(errno));
			return 2;
		}
		close(fd);
		return 0;
	}
	int want_pio = 0;
	for (int i = 0; i < nkinds; i++)
		want_pio |= kinds[i] == KIND_PIO;
	if (want_pio && ioperm(SYNC_PORT, 1, 1) != 0) {
		fprintf(stderr, "syncpt: ioperm(0x%x) failed: %s (kind=pio needs root and a kernel with CONFIG_X86_IOPL_IOPERM)\n",
			SYNC_PORT, strerror(errno));
		return 2;
	}

	/* The CPUs we may run on now are the ones we visit; pinning to each proves which CPU a
	 * point was taken on, so the line's cpu= is the CPU whose buffer holds the marker. */
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
		fprintf(stderr, "syncpt: sched_getaffinity: %s\n", strerror(errno));
		return 2;
	}
	long seq = 0, written = 0;
	int cpus = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed))
			continue;
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof one, &one) != 0) {
			fprintf(stderr, "syncpt: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
			return 2;
		}
		cpus++;
		for (int j = 0; j < nkinds; j++) {
			enum kind k = kinds[j];
			const char *kname = k == KIND_CPUID ? "cpuid" : "pio";
			for (long i = 0; i < n; i++, seq++) {
				uint64_t t0 = tsc_read();
				do_exit_insn(k);
				uint64_t t1 = tsc_read();
				int on = sched_getcpu();
				char line[160];
				int len = snprintf(line, sizeof line, "kvmsync seq=%ld cpu=%d kind=%s t0=%llu t1=%llu\n",
						   seq, on, kname, (unsigned long long)t0, (unsigned long long)t1);
				if (write_line(fd, line, (size_t)len) != 0) {
					fprintf(stderr, "syncpt: write to %s failed: %s\n", marker, strerror(errno));
					return 2;
				}
				written++;
			}
		}
	}
	sched_setaffinity(0, sizeof allowed, &allowed);
	close(fd);
	fprintf(stderr, "syncpt: %ld points on %d CPU(s)\n", written, cpus);
	return 0;
}
