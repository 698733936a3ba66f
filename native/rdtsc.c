/*
 * rdtsc: prints the TSC, or reads files and prints the TSC right after each read.
 *
 *   rdtsc              prints "<tsc>"
 *   rdtsc FILE...      for each FILE prints "<FILE>\t<contents, trimmed>\t<tsc>"
 *
 * The second form lets a capture read debugfs (kvm/<pid>-<fd>/vcpuN/tsc-offset, ...) and stamp each
 * reading with the host TSC microseconds after it, without the jitter of starting a process per
 * read. A file that cannot be read prints "<FILE>\t!<error>\t<tsc>" and makes the exit status 2.
 * TSC values are decimal cycles.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "tsc.h"

int main(int argc, char **argv)
{
	if (argc == 1) {
		printf("%llu\n", (unsigned long long)tsc_read());
		return 0;
	}
	int status = 0;
	for (int i = 1; i < argc; i++) {
		char buf[256];
		ssize_t r = -1;
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			r = read(fd, buf, sizeof buf - 1);
			close(fd);
		}
		unsigned long long tsc = tsc_read();
		if (r < 0) {
			printf("%s\t!%s\t%llu\n", argv[i], strerror(errno), tsc);
			status = 2;
			continue;
		}
		while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
			r--;
		buf[r] = 0;
		for (ssize_t j = 0; j < r; j++)
			if (buf[j] == '\n' || buf[j] == '\t')
				buf[j] = ' ';
		printf("%s\t%s\t%llu\n", argv[i], buf, tsc);
	}
	return status;
}
