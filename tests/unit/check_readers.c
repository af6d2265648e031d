/* check_readers.c - LMDB reader slots (issue 8 req 6, src/store.c
 * invariants 3 and 6): a reader table full of dead processes' slots is
 * cleared (mdb_reader_check) and the transaction retried; live readers
 * that fill it give a bounded -EAGAIN, never a hang.
 *
 * The store's lock file is made with 4 slots (a test backdoor); children
 * that open their own environment (after the fork, never the parent's) and
 * sit in a read transaction fill them. */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/wait.h>

#include "graph.h"
#include "manifest.h"
#include "store_int.h"
#include "testutil.h"

static const char SCHEMA[] = "node Person { slug: String @key }\n";

#include "teststore.h"

#define SLOTS 4

static void small_setup(void)
{
	gfs_manifest_debug_set_maxreaders(SLOTS);
	setup(); /* the lock file is created with SLOTS reader slots */
}

/* A child: its own env, one read transaction held until killed. */
static void reader_child(int ready_fd)
{
	char mdir[PATH_MAX + 16];
	MDB_env *env;
	MDB_txn *txn;

	snprintf(mdir, sizeof mdir, "%s/manifest", dir);
	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
	    mdb_env_open(env, mdir, MDB_NOTLS | MDB_RDONLY, 0644) ||
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
		_exit(1);
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

/* Forks n children, each holding a reader slot; their pids in pids. */
static void fill_slots(pid_t *pids, int n)
{
	int p[2];
	char c;

	ck_assert_int_eq(pipe(p), 0);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			close(p[0]);
			reader_child(p[1]);
		}
	}
	close(p[1]);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
}

static void kill_all(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
}

START_TEST(readers_full_of_dead_processes_is_cleared_and_retried)
{
	struct gfs_graph *g = open_g(); /* opened before the slots fill */
	pid_t pids[SLOTS];
	struct gfs_gv *gv = NULL;

	fill_slots(pids, SLOTS);
	kill_all(pids, SLOTS); /* every slot now names a dead pid */
	ck_assert_int_eq(gfs_manifest_head(gfs_graph_manifest(g), &gv), 0);
	ck_assert_ptr_nonnull(gv);
	gfs_gv_free(gv);
	gfs_graph_close(g);
}
END_TEST

START_TEST(readers_full_of_live_readers_fails_with_eagain)
{
	struct gfs_graph *g = open_g();
	pid_t pids[SLOTS];
	struct gfs_gv *gv = NULL;

	fill_slots(pids, SLOTS);
	ck_assert_int_eq(gfs_manifest_head(gfs_graph_manifest(g), &gv), -EAGAIN);
	kill_all(pids, SLOTS);
	ck_assert_int_eq(gfs_manifest_head(gfs_graph_manifest(g), &gv), 0);
	gfs_gv_free(gv);
	gfs_graph_close(g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("readers");
	TCase *tc = tcase_create("readers");

	tcase_add_checked_fixture(tc, small_setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, readers_full_of_dead_processes_is_cleared_and_retried);
	tcase_add_test(tc, readers_full_of_live_readers_fails_with_eagain);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
