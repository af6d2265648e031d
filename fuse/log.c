/* log.c - the daemon's messages: stderr, and syslog once detached (log.h). */
#include "config.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "log.h"

static atomic_bool to_syslog;

void gfs_log_to_syslog(void)
{
	openlog("graphfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&to_syslog, true);
}

void gfs_log(int prio, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "graphfs: %s\n", msg);
	if (atomic_load(&to_syslog))
		syslog(prio, "%s", msg);
}
