/*
 * dbgout: copies a file (or stdin) out of a QEMU guest through isa-debugcon.
 *
 *   dbgout [-p PORT] [FILE]
 *
 * QEMU's isa-debugcon (-device isa-debugcon,iobase=0x5e9,chardev=...) writes every byte the guest
 * sends to its port into the chardev (a host file). Under an emulating hypervisor each OUT costs an
 * exit, so the data goes with REP OUTSB a page at a time: one exit per page instead of per byte.
 * Default port 0x5e9. Needs CAP_SYS_RAWIO (ioperm). Exit status 0 on success, 1 usage, 2 I/O error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <unistd.h>

#define PAGE 4096

/* Sends len bytes to the port with one REP OUTSB. */
static void send_page(uint16_t port, const unsigned char *buf, size_t len)
{
	__asm__ __volatile__("rep outsb" : "+S"(buf), "+c"(len) : "d"(port) : "memory");
}

int main(int argc, char **argv)
{
	unsigned long port = 0x5e9;
	int opt;
	while ((opt = getopt(argc, argv, "p:h")) != -1) {
		char *end;
		switch (opt) {
		case 'p':
			errno = 0;
			port = strtoul(optarg, &end, 0);
			if (errno || *end || port > 0xffff) {
				fprintf(stderr, "dbgout: -p wants a port up to 0xffff, not \"%s\"\n", optarg);
				return 1;
			}
			break;
		case 'h':
			printf("usage: dbgout [-p PORT] [FILE]   (default port 0x5e9, default FILE stdin)\n");
			return 0;
		default:
			fprintf(stderr, "usage: dbgout [-p PORT] [FILE]\n");
			return 1;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "usage: dbgout [-p PORT] [FILE]\n");
		return 1;
	}
	int fd = 0;
	if (optind < argc) {
		fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "dbgout: cannot open %s: %s\n", argv[optind], strerror(errno));
			return 2;
		}
	}
	if (ioperm(port, 1, 1) != 0) {
		fprintf(stderr, "dbgout: ioperm(0x%lx) failed: %s (needs root and a kernel with CONFIG_X86_IOPL_IOPERM)\n", port,
			strerror(errno));
		return 2;
	}
	static unsigned char buf[PAGE];
	unsigned long long total = 0;
	for (;;) {
		/* Fill a whole page (pipes return short reads) so that each exit carries a page. */
		size_t have = 0;
		while (have < PAGE) {
			ssize_t r = read(fd, buf + have, PAGE - have);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				fprintf(stderr, "dbgout: read failed: %s\n", strerror(errno));
				return 2;
			}
			if (r == 0)
				break;
			have += (size_t)r;
		}
		if (have == 0)
			break;
		send_page((uint16_t)port, buf, have);
		total += have;
		if (have < PAGE)
			break;
	}
	fprintf(stderr, "dbgout: %llu bytes to port 0x%lx\n", total, port);
	return 0;
}
