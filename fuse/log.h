/* log.h - the daemon's messages (docs/mount.md, "Messages").
 *
 *     gfs_log(LOG_WARNING, "close %s: %s", path, why);
 *
 * A message goes to stderr (seen with -f or -d) and, once the daemon has
 * detached from the terminal (gfs_log_to_syslog, called by main.c after
 * stdio went to /dev/null), to syslog(3) as "graphfs[PID]" with facility
 * LOG_DAEMON, so a background mount's refused writes and damaged files
 * are in the system log.  Thread-safe.
 */
#ifndef GFS_FUSE_LOG_H
#define GFS_FUSE_LOG_H

#include <syslog.h>

void gfs_log(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void gfs_log_to_syslog(void);

#endif
