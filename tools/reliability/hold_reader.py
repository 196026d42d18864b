#!/usr/bin/env python3
"""Holds an LMDB reader slot until killed: opens the environment in directory ARGV[1] read-only,
begins a read transaction, prints "ready" and sleeps. Killing it with SIGKILL leaves a stale
reader slot in lock.mdb, as a search process killed in the middle of a query does. Used by the
tests and the reliability campaign to check that SparseDB reclaims such slots.

    tools/reliability/hold_reader.py DB_DIR
"""
import ctypes
import sys
import time

MDB_RDONLY = 0x20000
MDB_NOTLS = 0x200000


def main():
    lib = ctypes.CDLL("liblmdb.so.0")
    env = ctypes.c_void_p()
    txn = ctypes.c_void_p()
    if lib.mdb_env_create(ctypes.byref(env)) != 0:
        sys.exit("mdb_env_create failed")
    lib.mdb_env_set_maxdbs(env, 32)
    rc = lib.mdb_env_open(env, sys.argv[1].encode(), MDB_RDONLY | MDB_NOTLS, 0o644)
    if rc != 0:
        sys.exit(f"mdb_env_open: {rc}")
    rc = lib.mdb_txn_begin(env, None, MDB_RDONLY, ctypes.byref(txn))
    if rc != 0:
        sys.exit(f"mdb_txn_begin: {rc}")
    print("ready", flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    main()
