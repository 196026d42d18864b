// See include/CLMDBGuard.h for what this is for.
#include "CLMDBGuard.h"

#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

// Per thread: where a fault inside the running guarded call jumps to (NULL outside one), and
// what the last fault was (a signal number, or 0 for an assertion). initial-exec TLS: the
// handler reads it with a plain load (no __tls_get_addr, which is not async-signal-safe), also
// when this code is in a dlopen'ed library (the Python package), where glibc serves it from its
// small static TLS reserve — hence 12 bytes, not the assertion's text.
static __thread sigjmp_buf *recovery __attribute__((tls_model("initial-exec")));
static __thread int fault_signal __attribute__((tls_model("initial-exec")));
// The last failed assertion's text, of whichever thread (diagnostic only: two threads failing
// assertions at once may mix their texts, never overrun the buffer).
static char assertion_text[320];

static struct sigaction previous_segv;
static struct sigaction previous_bus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_error;

static void on_fault(int signal, siginfo_t *info, void *context) {
    sigjmp_buf *jump = recovery;
    // Only a fault the kernel raised (si_code > 0: SEGV_MAPERR, BUS_ADRERR, …), not a SIGSEGV
    // or SIGBUS another process sent with kill() while LMDB happened to run.
    if (jump && info && info->si_code > 0) {
        recovery = NULL;
        fault_signal = signal;
        // SA_NODEFER left the signal unblocked, so no mask needs restoring (sigsetjmp(…, 0)).
        siglongjmp(*jump, 1);
    }
    // Not LMDB under a guard: behave as the handler installed before ours.
    const struct sigaction *before = signal == SIGBUS ? &previous_bus : &previous_segv;
    if ((before->sa_flags & SA_SIGINFO) && before->sa_sigaction) {
        before->sa_sigaction(signal, info, context);
        return;
    }
    if (!(before->sa_flags & SA_SIGINFO) && before->sa_handler != SIG_DFL && before->sa_handler != SIG_IGN) {
        before->sa_handler(signal);
        return;
    }
    // The default action: reinstate it; returning re-runs the faulting instruction, which then
    // ends the process with the signal as before (core dump included).
    sigaction(signal, before, NULL);
}

// LMDB's assertion callback (mdb_env_set_assert): called just before LMDB would abort().
static void on_assert(MDB_env *env, const char *message) {
    (void)env;
    sigjmp_buf *jump = recovery;
    if (jump) {
        recovery = NULL;
        fault_signal = 0;
        snprintf(assertion_text, sizeof assertion_text, "assertion: %s", message);
        siglongjmp(*jump, 1);
    }
}

static void install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    if (sigaction(SIGSEGV, &action, &previous_segv) != 0 || sigaction(SIGBUS, &action, &previous_bus) != 0)
        install_error = -1;
}

int sparsedb_lmdb_guard_install(struct MDB_env *env) {
    pthread_once(&install_once, install);
    if (env) mdb_env_set_assert(env, on_assert);
    return install_error;
}

const char *sparsedb_lmdb_fault_description(void) {
    return fault_signal == SIGBUS ? "SIGBUS" : fault_signal == SIGSEGV ? "SIGSEGV" : assertion_text;
}

// One guarded call: `recovery` points at this frame's jump buffer while `call` runs. Nested
// guards do not happen (LMDB calls no callback that re-enters), but the outer value is kept.
#define GUARDED(call)                                    \
    do {                                                 \
        sigjmp_buf jump;                                 \
        sigjmp_buf *outer = recovery;                    \
        if (sigsetjmp(jump, 0) != 0) {                   \
            recovery = outer;                            \
            return SPARSEDB_LMDB_FAULT;                  \
        }                                                \
        recovery = &jump;                                \
        int rc = (call);                                 \
        recovery = outer;                                \
        return rc;                                       \
    } while (0)

int sparsedb_guarded_get(struct MDB_txn *txn, unsigned int dbi, void *key, void *data) {
    GUARDED(mdb_get(txn, dbi, key, data));
}

int sparsedb_guarded_cursor_open(struct MDB_txn *txn, unsigned int dbi, struct MDB_cursor **cursor) {
    // Opening reads the table's record from the main table when another transaction changed
    // it (LMDB's DB_STALE): pages, so guarded too. (A fault there leaks the cursor's memory.)
    GUARDED(mdb_cursor_open(txn, dbi, cursor));
}

// Writes go through a cursor of our own, not mdb_put / mdb_del: those link a cursor on their
// own stack into the transaction's cursor list for the call's duration, so after a fault the
// list would hold a dead stack address that aborting the transaction frees (glibc then aborts
// the process). A cursor from mdb_cursor_open lives on the heap and is freed by the abort.
// (LMDB's page splits and rebalancing link stack cursors the same way; a fault inside one of
// those can still end the process when the transaction is aborted.)
typedef int (*CursorWrite)(MDB_cursor *cursor, MDB_val *key, MDB_val *data, unsigned int flags);

static int put_at(MDB_cursor *cursor, MDB_val *key, MDB_val *data, unsigned int flags) {
    return mdb_cursor_put(cursor, key, data, flags);
}

static int delete_at(MDB_cursor *cursor, MDB_val *key, MDB_val *data, unsigned int flags) {
    (void)data;
    MDB_val found;
    int rc = mdb_cursor_get(cursor, key, &found, MDB_SET);
    return rc == MDB_SUCCESS ? mdb_cursor_del(cursor, flags) : rc;
}

static int guarded_write(CursorWrite write, MDB_cursor *cursor, MDB_val *key, MDB_val *data, unsigned int flags) {
    GUARDED(write(cursor, key, data, flags));
}

static int write_through_own_cursor(struct MDB_txn *txn, unsigned int dbi, CursorWrite write, MDB_val *key, MDB_val *data,
                                    unsigned int flags) {
    MDB_cursor *cursor;
    int rc = sparsedb_guarded_cursor_open(txn, dbi, &cursor);
    if (rc != MDB_SUCCESS) return rc;
    rc = guarded_write(write, cursor, key, data, flags);
    // After a fault the cursor's state is unknown: leave it for the abort to free.
    if (rc != SPARSEDB_LMDB_FAULT) mdb_cursor_close(cursor);
    return rc;
}

int sparsedb_guarded_put(struct MDB_txn *txn, unsigned int dbi, void *key, void *data, unsigned int flags) {
    return write_through_own_cursor(txn, dbi, put_at, key, data, flags);
}

/// `mdb_del(txn, dbi, key, NULL)` for a table without duplicates: MDB_NOTFOUND when absent.
int sparsedb_guarded_del(struct MDB_txn *txn, unsigned int dbi, void *key) {
    return write_through_own_cursor(txn, dbi, delete_at, key, NULL, 0);
}

int sparsedb_guarded_cursor_get(struct MDB_cursor *cursor, void *key, void *data, int op) {
    GUARDED(mdb_cursor_get(cursor, key, data, (MDB_cursor_op)op));
}

int sparsedb_guarded_cursor_del(struct MDB_cursor *cursor, unsigned int flags) {
    GUARDED(mdb_cursor_del(cursor, flags));
}

int sparsedb_guarded_dbi_open(struct MDB_txn *txn, const char *name, unsigned int flags, unsigned int *dbi) {
    GUARDED(mdb_dbi_open(txn, name, flags, dbi));
}

int sparsedb_guarded_drop(struct MDB_txn *txn, unsigned int dbi, int del) {
    GUARDED(mdb_drop(txn, dbi, del));
}

int sparsedb_guarded_txn_commit(struct MDB_txn *txn) {
    GUARDED(mdb_txn_commit(txn));
}
