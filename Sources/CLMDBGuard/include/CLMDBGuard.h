#ifndef CLMDB_GUARD_H
#define CLMDB_GUARD_H

// LMDB trusts the structure of its own pages: a damaged node offset or child page number makes
// it read outside the memory map (SIGSEGV, SIGBUS) or trip one of its assertions (abort). These
// wrappers run one LMDB call each with a per-thread recovery point: a fault or assertion inside
// that call returns SPARSEDB_LMDB_FAULT instead of ending the process. Only LMDB's own C frames
// lie between the recovery point and the fault, so jumping back skips no Swift code.
//
// The LMDB types are declared incomplete here (the CLMDB module owns lmdb.h); Swift sees
// OpaquePointer for them, as it does for CLMDB's. `key` and `data` are `MDB_val *`.

struct MDB_env;
struct MDB_txn;
struct MDB_cursor;

/// What the wrappers return when the call faulted or LMDB's assertion failed: outside LMDB's
/// own error range (-30799 … -30780) and errno's.
#define SPARSEDB_LMDB_FAULT (-30600)

/// Installs the process's SIGSEGV and SIGBUS handlers (once; later calls do nothing) and sets
/// `env`'s assertion callback. A fault outside a guarded call goes to the handler that was
/// installed before (or the default action), as if ours were not there. Returns 0 or an errno.
int sparsedb_lmdb_guard_install(struct MDB_env *env);

/// What the last guarded call on this thread that returned SPARSEDB_LMDB_FAULT ran into:
/// "SIGSEGV", "SIGBUS" or LMDB's assertion message.
const char *sparsedb_lmdb_fault_description(void);

int sparsedb_guarded_get(struct MDB_txn *txn, unsigned int dbi, void *key, void *data);
/// `mdb_put`, through a cursor of its own (see lmdb_guard.c for why).
int sparsedb_guarded_put(struct MDB_txn *txn, unsigned int dbi, void *key, void *data, unsigned int flags);
/// Deletes `key` from a table without duplicate keys; MDB_NOTFOUND when it is absent.
int sparsedb_guarded_del(struct MDB_txn *txn, unsigned int dbi, void *key);
int sparsedb_guarded_cursor_open(struct MDB_txn *txn, unsigned int dbi, struct MDB_cursor **cursor);
int sparsedb_guarded_cursor_get(struct MDB_cursor *cursor, void *key, void *data, int op);
int sparsedb_guarded_cursor_del(struct MDB_cursor *cursor, unsigned int flags);
int sparsedb_guarded_dbi_open(struct MDB_txn *txn, const char *name, unsigned int flags, unsigned int *dbi);
int sparsedb_guarded_drop(struct MDB_txn *txn, unsigned int dbi, int del);

/// `mdb_txn_commit`. It frees the transaction when it returns (success or error), but not when
/// it faulted: on SPARSEDB_LMDB_FAULT the caller still owns the transaction and must abort it.
int sparsedb_guarded_txn_commit(struct MDB_txn *txn);

#endif
