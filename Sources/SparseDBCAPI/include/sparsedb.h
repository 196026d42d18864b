/*
 * sparsedb.h — the C ABI of SparseDB (libSparseDBC.so), an embedded sparse-vector database.
 *
 *     swift build -c release --product SparseDBC     # .build/release/libSparseDBC.so
 *
 * A thin layer over the Swift library's public API (Database, VectorCollection, TextEncoder):
 * the same engine, the same checks, the same error messages. Built for bindings (the Python
 * package in python/ uses it through ctypes) and for C hosts.
 *
 * CONVENTIONS
 *
 * Status.  Every call that can fail returns an int32_t status: SDB_OK (0) or one of the SDB_*
 *   codes below, and takes a last argument `sdb_error **error`. On failure, when `error` is not
 *   NULL, *error receives a new error object (code, message) that the caller frees with
 *   sdb_error_free; on success *error is set to NULL. Passing NULL for `error` is allowed (the
 *   status alone is returned). No Swift error and no Swift trap crosses this boundary: bad
 *   arguments (NULL handles, inconsistent offsets, invalid UTF-8, NaN or negative weights,
 *   dimensions out of range, ...) are refused with SDB_INVALID_INPUT and a message naming the
 *   offending document or query. Calls that write change nothing when they fail.
 *
 * Handles.  sdb_database, sdb_collection, sdb_encoder are opaque pointers to retained Swift
 *   objects; each handle returned through an out-parameter is owned by the caller and released
 *   exactly once by its *_free function (NULL is accepted and ignored). A collection handle keeps
 *   its database object alive; it may outlive the database handle it came from.
 *
 * Results.  Calls that return data return one owned result object (sdb_results, sdb_documents,
 *   sdb_vectors) whose arrays are read through a *_view call and stay valid, unchanged, until
 *   the object's *_free call; or a JSON text (char *) freed with sdb_string_free. Nothing else
 *   returned by this library needs freeing, and nothing the caller passes in is retained after a
 *   call returns (inputs are copied).
 *
 * Arrays in.  Batches are passed CSR-style so that a binding hands over whole buffers:
 *   - n strings (ids, texts) as `data` (UTF-8 bytes, no terminators) plus `offsets` (n + 1
 *     int64_t, non-decreasing): string i is data[offsets[i] .. offsets[i+1]).
 *   - n sparse vectors as `indptr` (n + 1 int64_t, non-decreasing), `indices` (uint32_t
 *     dimensions) and `values` (float weights): vector i is entries indptr[i] .. indptr[i+1].
 *     Entries of a row may come in any order (they are sorted); a repeated dimension is refused.
 *     Weights must be finite, >= 0 and <= 1e9; zeros are allowed and dropped from the index.
 *   - optional payloads (opaque bytes) as data + offsets + `present` (n uint8_t, 0 = no payload);
 *     pass three NULLs for "no payloads".
 *   The caller guarantees that each array has the length these rules give it; the library
 *   checks the offsets themselves (non-negative, non-decreasing) before reading anything.
 *
 * Threads.  Database, collection and encoder objects are thread-safe: any number of threads may
 *   call into the same handles at once (searches run concurrently on MVCC snapshots; writes are
 *   serialized). The library keeps no global mutable state of its own. A handle must not be
 *   freed while another thread is still using it. Batch searches may fan out over several
 *   threads inside one call (`threads` argument). Calls block; a binding should release its
 *   interpreter lock around them (Python's ctypes does).
 *
 * Closing.  sdb_database_close closes the database (LMDB environment) for every handle and
 *   collection on the same directory in this process; their later calls fail with SDB_CLOSED.
 *   Handles must still be freed.
 */
#ifndef SPARSEDB_H
#define SPARSEDB_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versions ---------------------------------------------------------------------------- */

/** The ABI version of this header (5). A binding checks it before any other call. Version 2 added
 *  every field kind, attributes, filters and hybrid search ("Fields of every kind" below);
 *  version 3 added sdb_collection_search_into, sdb_filter and SDB_SEARCH_TIME_ENGINE; version 4
 *  added sdb_collection_search_call; version 5 turned sdb_search_options' last member (reserved,
 *  0) into `candidates` (0 = k: a caller that passes 0 keeps its behaviour). The functions of
 *  earlier versions are unchanged. */
#define SDB_ABI_VERSION 5
int32_t sdb_abi_version(void);
/** The library version, e.g. "0.1.0"; a static string (do not free). */
const char *sdb_version(void);

/* ---- Status codes (stable; new ones may be added) ---------------------------------------- */

#define SDB_OK 0
#define SDB_INVALID_INPUT 1    /* a vector, id, argument or option is not acceptable */
#define SDB_NOT_FOUND 2        /* a collection, database, model or file does not exist */
#define SDB_ALREADY_EXISTS 3   /* a collection that must be new exists */
#define SDB_CORRUPT 4          /* stored bytes failed a check (checksum, length, structure) */
#define SDB_FOREIGN_FORMAT 5   /* the directory holds something that is not a SparseDB database */
#define SDB_NEWER_FORMAT 6     /* written by a newer SparseDB */
#define SDB_OLDER_FORMAT 7     /* written by an older format: `sparsedb upgrade --db DIR` */
#define SDB_STORAGE 8          /* LMDB reported an error (sdb_error_lmdb_code) */
#define SDB_COMPRESSION 9      /* zstd reported an error */
#define SDB_MODEL 10           /* a model folder or weight file is missing, malformed or unsupported */
#define SDB_IO 11              /* a file could not be read or written */
#define SDB_MODEL_MISMATCH 12  /* a collection was built with another encoder */
#define SDB_CLOSED 13          /* the database was closed */
#define SDB_DISK_FULL 14       /* the file system is full; committed data is intact */
#define SDB_INTERNAL 100       /* anything else (a bug: please report the message) */

/* ---- Errors and strings ------------------------------------------------------------------ */

typedef struct sdb_error sdb_error;

/** The SDB_* code of `error` (SDB_OK for NULL). */
int32_t sdb_error_code(const sdb_error *error);
/** What went wrong and where, NUL-terminated UTF-8; owned by `error`, valid until it is freed. */
const char *sdb_error_message(const sdb_error *error);
/** The LMDB return code when LMDB reported the failure, else 0. */
int32_t sdb_error_lmdb_code(const sdb_error *error);
/** Frees an error object (NULL is ignored). */
void sdb_error_free(sdb_error *error);
/** Frees a string returned by a *_json call or sdb_collection_ingest (NULL is ignored). */
void sdb_string_free(char *string);

/* ---- Databases ----------------------------------------------------------------------------- */

typedef struct sdb_database sdb_database;
typedef struct sdb_collection sdb_collection;
typedef struct sdb_encoder sdb_encoder;

#define SDB_OPEN_READ_ONLY 1u  /* open an existing database without write access */
#define SDB_OPEN_NO_CREATE 2u  /* never create the database; SDB_NOT_FOUND when absent */

/**
 * Opens (creating it unless told otherwise) the database in directory `path`.
 * `posting_cache_bytes`: bytes of decoded postings kept between queries (< 0: default 512 MiB;
 * 0 disables the cache). On success *out is a new handle (free it with sdb_database_free).
 * Every handle on one directory in one process shares one environment.
 */
int32_t sdb_database_open(const char *path, uint32_t flags, int64_t posting_cache_bytes,
                          sdb_database **out, sdb_error **error);
/** Closes the database for every handle on its directory (waits for running transactions).
 *  Safe to call more than once and from any thread; does not free the handle. */
void sdb_database_close(sdb_database *db);
/** Releases the handle (NULL is ignored). Does not close the database by itself. */
void sdb_database_free(sdb_database *db);

/** The collection names, sorted, as a JSON array of strings (free with sdb_string_free). */
int32_t sdb_database_collection_names(sdb_database *db, char **names_json, sdb_error **error);

/** The existing collection `name` (SDB_NOT_FOUND when absent); free with sdb_collection_free. */
int32_t sdb_database_collection(sdb_database *db, const char *name, sdb_collection **out,
                                sdb_error **error);

#define SDB_CREATE_EXIST_OK 1u  /* return the collection when it exists with the same schema */

/**
 * Creates collection `name` with `field_count` sparse fields: field i is named field_names[i]
 * (`field_names` may be NULL when field_count is 1: the field is then "vector") and has
 * dimensions[i] dimensions (indices 0 .. dimensions[i]-1). SDB_ALREADY_EXISTS when it exists,
 * unless SDB_CREATE_EXIST_OK (then SDB_INVALID_INPUT if its schema differs).
 */
int32_t sdb_database_create_collection(sdb_database *db, const char *name, int64_t field_count,
                                       const char *const *field_names, const uint32_t *dimensions,
                                       uint32_t flags, sdb_collection **out, sdb_error **error);

/** Deletes collection `name` and everything in it, in one transaction. */
int32_t sdb_database_drop_collection(sdb_database *db, const char *name, sdb_error **error);

/** Sizes and counts of the database as JSON (`sparsedb stats`); free with sdb_string_free. */
int32_t sdb_database_statistics_json(sdb_database *db, char **json, sdb_error **error);

/** Checks every stored structure; *json is a JSON array of problems (empty when sound). */
int32_t sdb_database_verify_json(sdb_database *db, char **json, sdb_error **error);

/** Writes a compacted copy of the database into `target` (a new or empty directory). */
int32_t sdb_database_write_compacted_copy(sdb_database *db, const char *target, sdb_error **error);

/* ---- Collections ------------------------------------------------------------------------- */

/** Releases a collection handle (NULL is ignored). */
void sdb_collection_free(sdb_collection *collection);

/** `{"name", "dimensions", "fields": [{"name", "kind", "dimensions", ...}], "attributes":
 *  [{"name", "type"}]}` (no I/O). Fields carry their options as in the schema JSON of
 *  sdb_database_create_collection_schema (csr: active_dimensions, keep_largest, precision, index
 *  as stored, "automatic" resolved; dense: metric, precision). */
int32_t sdb_collection_info_json(sdb_collection *collection, char **json, sdb_error **error);

/** Counts and sizes of the collection as JSON (scans its tables: not for hot paths). */
int32_t sdb_collection_statistics_json(sdb_collection *collection, char **json, sdb_error **error);

/** Number of live documents. */
int32_t sdb_collection_count(sdb_collection *collection, int64_t *count, sdb_error **error);

/** Removes deleted documents for good and re-packs the posting lists (one transaction). */
int32_t sdb_collection_compact(sdb_collection *collection, sdb_error **error);

/**
 * Inserts `count` documents, replacing stored ones with the same ids, in ONE transaction (all or
 * nothing). Ids: data + offsets (1..500 UTF-8 bytes each, unique within the call). Vectors: for
 * each of `field_count` fields f, a CSR matrix indptrs[f] / indices[f] / values[f] with `count`
 * rows; field_names[f] names the field (`field_names`, or one of its entries, may be NULL for the
 * collection's only field). Every document gets a vector (possibly empty) in every field given.
 * Payloads: opaque bytes stored with the document and returned with hits (NULLs: none).
 */
int32_t sdb_collection_upsert(sdb_collection *collection, int64_t count, const char *id_data,
                              const int64_t *id_offsets, int64_t field_count,
                              const char *const *field_names, const int64_t *const *indptrs,
                              const uint32_t *const *indices, const float *const *values,
                              const char *payload_data, const int64_t *payload_offsets,
                              const uint8_t *payload_present, sdb_error **error);

/** Deletes the documents with these ids in one transaction; *deleted (may be NULL) receives how
 *  many existed (ids that do not exist are not an error). */
int32_t sdb_collection_delete(sdb_collection *collection, int64_t count, const char *id_data,
                              const int64_t *id_offsets, int64_t *deleted, sdb_error **error);

typedef struct sdb_documents sdb_documents;

/**
 * Looks up `count` documents by id (one read snapshot per id). `field`: the field whose vector is
 * returned (NULL: the only field, or "vector"). *out is freed with sdb_documents_free.
 */
int32_t sdb_collection_get(sdb_collection *collection, const char *field, int64_t count,
                           const char *id_data, const int64_t *id_offsets, sdb_documents **out,
                           sdb_error **error);

/**
 * The arrays of a get result (any out-pointer may be NULL): *count rows; found[i] is 1 when id i
 * exists; its vector is the CSR row indptr[i] .. indptr[i+1] of indices / values (empty when
 * absent); its payload is bytes payload_offsets[i] .. payload_offsets[i+1] of payload_data,
 * present when payload_present[i] is 1. Pointers are valid until sdb_documents_free.
 */
void sdb_documents_view(const sdb_documents *documents, int64_t *count, const uint8_t **found,
                        const int64_t **indptr, const uint32_t **indices, const float **values,
                        const char **payload_data, const int64_t **payload_offsets,
                        const uint8_t **payload_present);
void sdb_documents_free(sdb_documents *documents);

/* ---- Search ---------------------------------------------------------------------------------- */

/* Algorithms: every exact one returns the same hits with the same scores. */
#define SDB_EXHAUSTIVE 0
#define SDB_MAXSCORE 1
#define SDB_WAND 2
#define SDB_BMW 3

#define SDB_SEARCH_NO_PAYLOADS 1u           /* do not load payloads (faster) */
#define SDB_SEARCH_ALLOW_MODEL_MISMATCH 2u  /* search_text: accept an encoder other than the recorded one */
#define SDB_SEARCH_TIME_ENGINE 4u           /* search_into: the engine's CPU time in header[4] */

typedef struct sdb_results sdb_results;

/**
 * Exact top-`k` by dot product for `count` queries given as a CSR matrix (see "Arrays in"), on
 * `field` (NULL: the collection's only field, or "vector"). `max_query_terms` > 0 keeps only that
 * many largest query weights and `heap_factor` > 1 prunes more (both approximate; 0 and 1 =
 * exact). `threads`: the queries are spread over this many threads (0 = one per core, 1 = the
 * calling thread only). All queries are checked before any runs; a failure fails the whole call
 * and names the query. *out is freed with sdb_results_free.
 */
int32_t sdb_collection_search(sdb_collection *collection, const char *field, int64_t count,
                              const int64_t *indptr, const uint32_t *indices, const float *values,
                              int64_t k, int32_t algorithm, int64_t max_query_terms,
                              float heap_factor, uint32_t flags, int32_t threads,
                              sdb_results **out, sdb_error **error);

/**
 * The arrays of a search result (any out-pointer may be NULL): *count queries; the hits of query
 * q are h = offsets[q] .. offsets[q+1], best first, with scores[h] (exact dot product, summed in
 * double), internal_ids[h] (insertion order; ties in score go to the smaller), the external id
 * bytes id_offsets[h] .. id_offsets[h+1] of id_data (UTF-8), and the payload bytes
 * payload_offsets[h] .. payload_offsets[h+1] of payload_data when payload_present[h] is 1.
 * statistics holds 7 counters per query: terms, postings decoded, blocks decoded, blocks skipped,
 * blocks decompressed, documents scored, candidates rescored. Valid until sdb_results_free.
 */
void sdb_results_view(const sdb_results *results, int64_t *count, const int64_t **offsets,
                      const double **scores, const uint32_t **internal_ids, const char **id_data,
                      const int64_t **id_offsets, const char **payload_data,
                      const int64_t **payload_offsets, const uint8_t **payload_present,
                      const int64_t **statistics);

/**
 * The whole result as one contiguous buffer of *size bytes, for bindings that copy it out in one
 * piece (valid until sdb_results_free; the arrays of sdb_results_view point into it). Native byte
 * order; every section starts at a multiple of 8 bytes from *data, in this order, with n queries
 * and h hits:
 *   int64_t header[4] = {n, h, id bytes, payload bytes};
 *   int64_t offsets[n + 1]; double scores[h]; uint32_t internal_ids[h];
 *   int64_t id_offsets[h + 1]; int64_t payload_offsets[h + 1]; int64_t statistics[7 * n];
 *   uint8_t payload_present[h]; char id_data[id bytes]; char payload_data[payload bytes].
 */
void sdb_results_packed(const sdb_results *results, const void **data, int64_t *size);
void sdb_results_free(sdb_results *results);

/* ---- Fields of every kind, attributes, filters, hybrid search (ABI 2) -------------------------- */

/**
 * Creates collection `name` from a schema in JSON:
 *   {"fields": [FIELD, ...], "attributes": [{"name": "lang", "type": "keyword"}, ...]}
 * FIELD is {"name", "kind": "sparse"|"csr"|"dense", "dimensions"} plus, for csr,
 * "active_dimensions" (k, 1..256, required), "keep_largest" (bool), "precision" ("f32"|"f16"),
 * "index" ("flat"|"inverted"|"automatic"); for dense, "metric" ("dot"|"cosine") and "precision".
 * Attribute types: keyword, integer, float, bool. Unknown keys are refused. Flags and errors as
 * sdb_database_create_collection.
 */
int32_t sdb_database_create_collection_schema(sdb_database *db, const char *name, const char *schema_json,
                                              uint32_t flags, sdb_collection **out, sdb_error **error);

/**
 * The rows of one field, for upserts and searches: `n` rows (n is the call's count) either
 *   - sparse (width == 0; sparse and csr fields): CSR arrays indptr (n + 1) / indices / values as
 *     in "Arrays in"; or
 *   - dense (width > 0; dense fields): `values` holds n * width floats, row-major (indptr and
 *     indices are ignored).
 * `field` names the field (NULL: the collection's only field, or "vector"). `present` is NULL
 * (every row is there) or n flags, 0 = row i is absent: that document gets no vector in this
 * field, that query no vector for it. 48 bytes, no padding.
 */
typedef struct sdb_matrix {
    const char *field;
    const int64_t *indptr;
    const uint32_t *indices;
    const float *values;
    const uint8_t *present;
    int64_t width;
} sdb_matrix;

/**
 * Inserts `count` documents in ONE transaction (all or nothing), replacing stored ones with the
 * same ids, as sdb_collection_upsert, with vectors of any kind: `fields` is an array of
 * `field_count` matrices, each of `count` rows (each field at most once; field_count may be 0:
 * documents with attributes and payloads only). `attributes_json` is NULL or a JSON array of
 * `count` items, each null or an object {name: value} of the collection's declared attributes: a
 * keyword is a string or a list of strings, an integer an integral number, a float a finite
 * number, a bool true or false; null leaves the attribute out. An undeclared name or a value of
 * the wrong type is SDB_INVALID_INPUT naming the document, and nothing is written.
 */
int32_t sdb_collection_upsert_matrix(sdb_collection *collection, int64_t count, const char *id_data,
                                     const int64_t *id_offsets, int64_t field_count, const sdb_matrix *fields,
                                     const char *payload_data, const int64_t *payload_offsets,
                                     const uint8_t *payload_present, const char *attributes_json,
                                     sdb_error **error);

/** Options of sdb_collection_search_matrix, sdb_collection_search_hybrid,
 *  sdb_collection_search_into and sdb_collection_search_call. 64 bytes, no padding. */
typedef struct sdb_search_options {
    int64_t k;                    /* hits per query (>= 1) */
    int64_t max_query_terms;      /* > 0: walk only that many largest query weights (approximate;
                                     the hits are scored with the whole query); 0: all */
    int64_t max_active_dims;      /* csr fields, > 0: keep the query's K largest entries; 0: all */
    int64_t truncate_dim;         /* dense fields, > 0: score on the first D dimensions; 0: all */
    double heap_factor;           /* 1 = exact; > 1 prunes more (approximate) */
    const char *filter_json;      /* NULL, or a filter as `sparsedb search --filter` takes it */
    int32_t algorithm;            /* SDB_EXHAUSTIVE, SDB_MAXSCORE, SDB_WAND, SDB_BMW (sparse walks) */
    int32_t threads;              /* 0 = one per core, 1 = the calling thread only */
    uint32_t flags;               /* SDB_SEARCH_NO_PAYLOADS */
    uint32_t candidates;          /* ABI 5 (before: reserved, 0). With max_query_terms: the best
                                     `candidates` documents of the pruned search are rescored with
                                     the whole query and the best k of them returned; more
                                     candidates, better recall. k <= candidates <= 2^20, 0 = k;
                                     another value is SDB_INVALID_INPUT ("candidates must be
                                     between k (K) and 2^20, got C"), with or without
                                     max_query_terms (as the Swift API: SearchOptions.candidates).
                                     Hybrid search: each field's candidates are at least its depth. */
} sdb_search_options;

/**
 * Exact top-k for `count` queries of one field (`queries->field`; sparse rows for sparse and csr
 * fields, dense rows of the field's dimensions, or of truncate_dim, for dense fields), as
 * sdb_collection_search. `filter_json` (e.g. {"lang": "en", "year": {"gte": 2000}}; operators in,
 * eq, gt, gte, lt, lte, $and, $or, $not) restricts every query to the documents it admits: the
 * result is the exact top-k among them. A malformed filter, an undeclared attribute or a value of
 * the wrong type is SDB_INVALID_INPUT. A query whose `present` flag is 0 gets no hits.
 */
int32_t sdb_collection_search_matrix(sdb_collection *collection, const sdb_matrix *queries, int64_t count,
                                     const sdb_search_options *options, sdb_results **out, sdb_error **error);

/** A parsed filter (ABI 3), for many searches with one filter: parsing its JSON costs more than a
 *  small search. Thread-safe and not tied to a collection (each search checks it against its
 *  collection's attributes, as for filter_json). */
typedef struct sdb_filter sdb_filter;

/** Parses a filter as sdb_search_options.filter_json takes it; a malformed one is
 *  SDB_INVALID_INPUT. Free *out with sdb_filter_free. */
int32_t sdb_filter_parse(const char *filter_json, sdb_filter **out, sdb_error **error);
void sdb_filter_free(sdb_filter *filter);

/**
 * One query, its hits written into the caller's buffer (ABI 3): the path for bindings that search
 * one query at a time, where the result object of sdb_collection_search_matrix (an allocation, a
 * view or copy, a free: three calls) costs as much as a small search. `query` holds one row
 * (count 1) and `options` are read as sdb_collection_search_matrix reads them, with the same
 * checks and messages (options->threads is ignored: one query runs on the calling thread).
 * `filter` is NULL or a parsed filter used instead of options->filter_json (which must then be
 * NULL).
 *
 * On SDB_OK, `buffer` (capacity >= 48 bytes, 8-byte aligned) starts with int64_t header[6]:
 *   - header[0] = h >= 0: the hits fit and follow, native byte order, sections from `buffer`:
 *       int64_t header[6] = {h, id bytes, payload bytes, payloads present, engine ns, 0};
 *       double scores[h]                  at 48, best first (exact dot product);
 *       int64_t id_offsets[h + 1]         at 48 + 8h: id i is id_data[id_offsets[i] ..
 *                                         id_offsets[i+1] - 1), each id followed by a NUL byte
 *                                         (ids may hold NULs themselves: the offsets are exact);
 *       int64_t payload_offsets[h + 1]    at 56 + 16h;
 *       uint8_t payload_present[h]        at 64 + 24h, then zero padding to a multiple of 8;
 *       char id_data[id bytes]            then padding to a multiple of 8;
 *       char payload_data[payload bytes]  payload i is payload_data[payload_offsets[i] ..
 *                                         payload_offsets[i+1]) when payload_present[i] is 1.
 *     "engine ns" is the calling thread's CPU time inside the engine's search when
 *     options->flags has SDB_SEARCH_TIME_ENGINE (two clock reads), else 0: a binding's own cost
 *     is its call's time minus this, measured on the same query at the same moment.
 *     A query whose `present` flag is 0 gets h = 0.
 *   - header[0] = -1: the hits need header[1] bytes, more than `capacity`; header[2] holds an
 *     sdb_results object with them (as sdb_collection_search_matrix returns it) that the caller
 *     frees with sdb_results_free. The search is never run twice.
 * On failure the buffer's contents are unspecified.
 */
int32_t sdb_collection_search_into(sdb_collection *collection, const sdb_matrix *query,
                                   const sdb_search_options *options, const sdb_filter *filter,
                                   void *buffer, int64_t capacity, sdb_error **error);

/** The arguments of sdb_collection_search_into in one block (ABI 4). 64 bytes, no padding. */
typedef struct sdb_search_call {
    sdb_collection *collection;
    const sdb_matrix *query;
    const sdb_search_options *options;
    const sdb_filter *filter;   /* NULL or a parsed filter */
    void *buffer;
    int64_t capacity;
    sdb_error *error;           /* out: NULL on SDB_OK, else the error object (the caller frees it) */
    int64_t reserved;           /* 0 */
} sdb_search_call;

/**
 * sdb_collection_search_into with its arguments in one block (ABI 4): the same checks, the same
 * layout in call->buffer, the error object in call->error. For bindings whose foreign calls cost
 * per argument (Python's ctypes converts and classifies every argument on every call): a
 * binding that searches one query at a time can keep the block, the query and the options in
 * one buffer, rewrite only what changed, and pass one pointer.
 */
int32_t sdb_collection_search_call(sdb_search_call *call);

#define SDB_FUSION_RRF 0       /* reciprocal rank fusion: sum of 1 / (rrf_constant + rank) */
#define SDB_FUSION_WEIGHTED 1  /* weighted sum of min-max normalised exact scores */

/** How sdb_collection_search_hybrid fuses the fields' rankings. 32 bytes, no padding. */
typedef struct sdb_fusion_options {
    int32_t method;         /* SDB_FUSION_RRF or SDB_FUSION_WEIGHTED */
    int32_t reserved;       /* 0 */
    int64_t depth;          /* each field's exact top-depth (0: the default, 100) */
    double rrf_constant;    /* RRF's constant (< 0: the default, 60) */
    const double *weights;  /* NULL, or one weight per field given; NaN = an equal share of the rest */
} sdb_fusion_options;

/**
 * Hybrid search: `count` queries, each with a vector in up to `field_count` fields (`queries` is
 * an array of field_count matrices of count rows; a `present` flag 0 leaves that field out of
 * that query). Each field is searched exactly to fusion->depth among the documents the filter
 * admits, and the rankings are fused; k hits per query. Hits' scores are fused scores;
 * sdb_results_field_scores gives each hit's exact score in every field.
 */
int32_t sdb_collection_search_hybrid(sdb_collection *collection, int64_t field_count, const sdb_matrix *queries,
                                     int64_t count, const sdb_search_options *options,
                                     const sdb_fusion_options *fusion, sdb_results **out, sdb_error **error);

/** Hybrid results: *field_count (the fields given, in order) and scores[h * field_count + f], the
 *  exact score of hit h in field f (NaN when its query had no vector there). For other results
 *  *field_count is 0. Valid until sdb_results_free. */
void sdb_results_field_scores(const sdb_results *results, int64_t *field_count, const double **scores);

/**
 * Looks up `count` documents by id (one read snapshot per id) with every field and attribute.
 * sdb_documents_view gives found flags and payloads (its CSR arrays are empty rows); the fields
 * come from sdb_documents_field, the attributes from sdb_documents_attributes_json.
 */
int32_t sdb_collection_get_documents(sdb_collection *collection, int64_t count, const char *id_data,
                                     const int64_t *id_offsets, sdb_documents **out, sdb_error **error);

/** Number of fields of a sdb_collection_get_documents result (0 for sdb_collection_get). */
int64_t sdb_documents_field_count(const sdb_documents *documents);

/**
 * Field `index` (schema order) of a documents result: its NUL-terminated name, and its rows as
 * in sdb_matrix: width 0 = CSR rows indptr / indices / values; width > 0 = dense rows, values
 * holds rows * width floats (zeros for absent rows). present[i] is 0 when document i has no
 * vector in the field (or does not exist). SDB_INVALID_INPUT for an index out of range. Valid
 * until sdb_documents_free.
 */
int32_t sdb_documents_field(const sdb_documents *documents, int64_t index, const char **name, int64_t *width,
                            const int64_t **indptr, const uint32_t **indices, const float **values,
                            const uint8_t **present);

/** The attributes of a sdb_collection_get_documents result: a JSON array with one object (or
 *  null for an absent document) per row; "[]" for sdb_collection_get. Owned by `documents`. */
const char *sdb_documents_attributes_json(const sdb_documents *documents);

/* ---- Text: encoders, ingest, text search ---------------------------------------------------- */

typedef struct sdb_vectors sdb_vectors;

/** Loads the model in folder `path` ("default": splade-tiny in the model cache). SDB_MODEL for a
 *  missing, malformed or unsupported folder. Free with sdb_encoder_free. Thread-safe. */
int32_t sdb_encoder_open(const char *path, sdb_encoder **out, sdb_error **error);
void sdb_encoder_free(sdb_encoder *encoder);

/** `{"name", "kind", "path", "checksum", "dimensions", "default_max_active_dims", "sparse"}`. */
int32_t sdb_encoder_info_json(sdb_encoder *encoder, char **json, sdb_error **error);

#define SDB_TASK_DOCUMENT 0
#define SDB_TASK_QUERY 1

/**
 * Encodes `count` texts (data + offsets) to sparse vectors, in parallel over all cores.
 * `task`: SDB_TASK_DOCUMENT or SDB_TASK_QUERY (route and prompt). `max_active_dims` > 0 keeps
 * that many largest weights (0: the model's default). *out is freed with sdb_vectors_free.
 */
int32_t sdb_encoder_encode(sdb_encoder *encoder, int64_t count, const char *text_data,
                           const int64_t *text_offsets, int32_t task, int64_t max_active_dims,
                           sdb_vectors **out, sdb_error **error);

/**
 * Dense embeddings of `count` texts with a dense model (kind "dense" or "static": info "sparse"
 * is false; a sparse model is SDB_INVALID_INPUT), in parallel. `truncate_dim` > 0 keeps the
 * first D dimensions (Matryoshka; 0: all). Read with sdb_vectors_dense_view; free with
 * sdb_vectors_free. (ABI 2)
 */
int32_t sdb_encoder_embed(sdb_encoder *encoder, int64_t count, const char *text_data, const int64_t *text_offsets,
                          int32_t task, int64_t truncate_dim, sdb_vectors **out, sdb_error **error);

/** The rows of sdb_encoder_embed: *count rows of *width floats, row-major (0 rows for the result
 *  of sdb_encoder_encode). Valid until sdb_vectors_free. (ABI 2) */
void sdb_vectors_dense_view(const sdb_vectors *vectors, int64_t *count, int64_t *width, const float **values);

/** The CSR arrays of encoded vectors (rows sorted by dimension); valid until sdb_vectors_free. */
void sdb_vectors_view(const sdb_vectors *vectors, int64_t *count, const int64_t **indptr,
                      const uint32_t **indices, const float **values);
void sdb_vectors_free(sdb_vectors *vectors);

/** The encoder a field was built with, as JSON `{"name", "checksum", "kind", "path"}`, or `null`
 *  when it was not built from text. `field` NULL: the only field. */
int32_t sdb_collection_encoder_json(sdb_collection *collection, const char *field, char **json,
                                    sdb_error **error);

/**
 * The encoder for text queries on `field`: the model in folder `model` (or "default"), checked
 * against the field's recorded encoder unless `allow_mismatch`; with `model` NULL, the recorded
 * one, loaded from its folder (SDB_INVALID_INPUT when the field was not built from text,
 * SDB_NOT_FOUND when its folder is gone). Free with sdb_encoder_free.
 */
int32_t sdb_collection_query_encoder(sdb_collection *collection, const char *model,
                                     const char *field, int32_t allow_mismatch,
                                     sdb_encoder **out, sdb_error **error);

/**
 * Encodes `count` query texts with `encoder` (NULL: the field's recorded encoder, loaded for this
 * call — pass one from sdb_collection_query_encoder to avoid that) in one batch, then searches
 * them as sdb_collection_search does (a dense model's embeddings on a dense field). An encoder other than the recorded one is SDB_MODEL_MISMATCH
 * unless flags has SDB_SEARCH_ALLOW_MODEL_MISMATCH; an empty (all white-space) text is
 * SDB_INVALID_INPUT. `max_active_dims` as for sdb_encoder_encode.
 */
int32_t sdb_collection_search_text(sdb_collection *collection, sdb_encoder *encoder,
                                   const char *field, int64_t count, const char *text_data,
                                   const int64_t *text_offsets, int64_t k, int32_t algorithm,
                                   int64_t max_query_terms, float heap_factor, uint32_t flags,
                                   int32_t threads, int64_t max_active_dims, sdb_results **out,
                                   sdb_error **error);

#define SDB_INGEST_REPLACE 1u         /* re-encode and replace stored ids (default: skip them) */
#define SDB_INGEST_ALLOW_MISMATCH 2u  /* accept an encoder other than the field's recorded one */
#define SDB_INGEST_NO_COMPACT 4u      /* do not re-pack fragmented lists at the end */

/**
 * Encodes `count` texts with `encoder` (NULL: the field's recorded one) and stores them with ids
 * and optional payloads into `field` (NULL: the only field), `batch_size` documents per write
 * transaction, encoding the next batch while the previous one commits. Every committed batch
 * stays if a later one fails. Ids already stored are skipped unless SDB_INGEST_REPLACE (so the
 * same call resumes an interrupted ingest); an id given twice is refused. The encoder is recorded
 * on the field on first use. *progress_json (may be NULL; free with sdb_string_free) receives
 * `{"read", "committed", "skipped", "encode_seconds", "write_seconds", "elapsed_seconds",
 * "compacted", "compact_seconds"}`.
 */
int32_t sdb_collection_ingest(sdb_collection *collection, sdb_encoder *encoder, const char *field,
                              int64_t count, const char *id_data, const int64_t *id_offsets,
                              const char *text_data, const int64_t *text_offsets,
                              const char *payload_data, const int64_t *payload_offsets,
                              const uint8_t *payload_present, int64_t batch_size,
                              int64_t max_active_dims, uint32_t flags, char **progress_json,
                              sdb_error **error);

/**
 * sdb_collection_ingest into several fields at once, with attributes (ABI 2): each text is
 * encoded once per field, field i (fields[i]; NULL: the only field, or "vector") with
 * encoders[i] (NULL: the field's recorded encoder), and every field of a batch is written in the
 * same transaction. `attributes_json` as for sdb_collection_upsert_matrix (checked before anything
 * is written). SDB_INGEST_REPLACE replaces whole documents (every field): to fill several fields
 * of the same documents, ingest them in one call.
 */
int32_t sdb_collection_ingest_fields(sdb_collection *collection, int64_t field_count, const char *const *fields,
                                     sdb_encoder *const *encoders, int64_t count, const char *id_data,
                                     const int64_t *id_offsets, const char *text_data, const int64_t *text_offsets,
                                     const char *payload_data, const int64_t *payload_offsets,
                                     const uint8_t *payload_present, const char *attributes_json, int64_t batch_size,
                                     int64_t max_active_dims, uint32_t flags, char **progress_json, sdb_error **error);

#ifdef __cplusplus
}
#endif

#endif /* SPARSEDB_H */
