/* A C host of libSparseDBC: the header compiles, and one round trip works with every object
 * freed (run by test_c_abi.py; under valgrind when available). Usage: c_smoke DB_DIR */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sparsedb.h"

#define CHECK(call)                                                                        \
    do {                                                                                   \
        if ((call) != SDB_OK) {                                                            \
            fprintf(stderr, "%s: %s\n", #call, sdb_error_message(error));                  \
            sdb_error_free(error);                                                         \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    sdb_error *error = NULL;
    sdb_database *db = NULL;
    sdb_collection *docs = NULL;
    if (sdb_abi_version() != SDB_ABI_VERSION) return 3;
    CHECK(sdb_database_open(argv[1], 0, -1, &db, &error));
    uint32_t dims = 100;
    CHECK(sdb_database_create_collection(db, "docs", 1, NULL, &dims, 0, &docs, &error));

    const char ids[] = "applebanana";
    const int64_t id_offsets[] = {0, 5, 11};
    const int64_t indptr[] = {0, 2, 3};
    const uint32_t indices[] = {7, 1, 1}; /* row 0 unsorted on purpose */
    const float values[] = {0.5f, 2.0f, 1.5f};
    const int64_t *indptrs[] = {indptr};
    const uint32_t *index_arrays[] = {indices};
    const float *value_arrays[] = {values};
    const char payloads[] = "{\"color\":\"red\"}";
    const int64_t payload_offsets[] = {0, (int64_t)strlen(payloads), (int64_t)strlen(payloads)};
    const uint8_t present[] = {1, 0};
    CHECK(sdb_collection_upsert(docs, 2, ids, id_offsets, 1, NULL, indptrs, index_arrays, value_arrays,
                                payloads, payload_offsets, present, &error));

    const int64_t q_indptr[] = {0, 1};
    const uint32_t q_indices[] = {1};
    const float q_values[] = {1.0f};
    sdb_results *results = NULL;
    CHECK(sdb_collection_search(docs, NULL, 1, q_indptr, q_indices, q_values, 10, SDB_BMW, 0, 1.0f, 0, 0,
                                &results, &error));
    int64_t n = 0;
    const int64_t *offsets, *hit_id_offsets, *p_offsets;
    const double *scores;
    const char *id_data, *p_data;
    const uint8_t *p_present;
    sdb_results_view(results, &n, &offsets, &scores, NULL, &id_data, &hit_id_offsets, &p_data, &p_offsets,
                     &p_present, NULL);
    for (int64_t h = offsets[0]; h < offsets[1]; h++) {
        printf("%.*s %.3f %.*s\n", (int)(hit_id_offsets[h + 1] - hit_id_offsets[h]), id_data + hit_id_offsets[h],
               scores[h], p_present[h] ? (int)(p_offsets[h + 1] - p_offsets[h]) : 4,
               p_present[h] ? p_data + p_offsets[h] : "null");
    }
    sdb_results_free(results);

    /* A NaN weight: a status and a message, nothing written. */
    const float bad[] = {NAN};
    const float *bad_values[] = {bad};
    const int64_t one_indptr[] = {0, 1};
    const int64_t *one_indptrs[] = {one_indptr};
    const int64_t one_offsets[] = {0, 6};
    int32_t status = sdb_collection_upsert(docs, 1, "cherry", one_offsets, 1, NULL, one_indptrs, index_arrays,
                                           bad_values, NULL, NULL, NULL, &error);
    printf("status %d code %d: %s\n", status, sdb_error_code(error), sdb_error_message(error));
    sdb_error_free(error);
    error = NULL;

    /* A null handle is an error, not a crash. */
    int64_t count = -1;
    status = sdb_collection_count(NULL, &count, &error);
    printf("status %d: %s\n", status, sdb_error_message(error));
    sdb_error_free(error);
    error = NULL;

    CHECK(sdb_collection_count(docs, &count, &error));
    printf("count %lld\n", (long long)count);
    char *names = NULL;
    CHECK(sdb_database_collection_names(db, &names, &error));
    printf("collections %s\n", names);
    sdb_string_free(names);

    /* ABI 2: a dense field and an attribute, a filtered search, a documents result. */
    if (sizeof(sdb_matrix) != 48 || sizeof(sdb_search_options) != 64 || sizeof(sdb_fusion_options) != 32) return 4;
    sdb_collection *emb = NULL;
    CHECK(sdb_database_create_collection_schema(
        db, "emb",
        "{\"fields\": [{\"name\": \"e\", \"kind\": \"dense\", \"dimensions\": 2}],"
        " \"attributes\": [{\"name\": \"lang\", \"type\": \"keyword\"}]}",
        0, &emb, &error));
    const float rows[] = {1.0f, 0.0f, 0.6f, 0.8f};
    sdb_matrix m = {"e", NULL, NULL, rows, NULL, 2};
    CHECK(sdb_collection_upsert_matrix(emb, 2, ids, id_offsets, 1, &m, NULL, NULL, NULL,
                                       "[{\"lang\": \"en\"}, {\"lang\": \"de\"}]", &error));
    const float query[] = {1.0f, 1.0f};
    sdb_matrix q = {"e", NULL, NULL, query, NULL, 2};
    sdb_search_options options = {10, 0, 0, 0, 1.0, "{\"lang\": \"de\"}", SDB_MAXSCORE, 1, 0, 0};
    CHECK(sdb_collection_search_matrix(emb, &q, 1, &options, &results, &error));
    sdb_results_view(results, &n, &offsets, &scores, NULL, &id_data, &hit_id_offsets, NULL, NULL, NULL, NULL);
    printf("filtered %lld hit: %.*s %.3f\n", (long long)(offsets[1] - offsets[0]),
           (int)(hit_id_offsets[1] - hit_id_offsets[0]), id_data, scores[0]);
    sdb_results_free(results);
    /* ABI 3: the same query into a caller's buffer, with a parsed filter. */
    sdb_filter *filter = NULL;
    CHECK(sdb_filter_parse("{\"lang\": \"de\"}", &filter, &error));
    sdb_search_options plain = options;
    plain.filter_json = NULL;
    int64_t buffer[64];
    CHECK(sdb_collection_search_into(emb, &q, &plain, filter, buffer, sizeof buffer, &error));
    int64_t hits = buffer[0];
    const char *first_id = (const char *)buffer + 64 + 24 * hits + ((hits + 7) & ~7);
    printf("into %lld hit: %s %.3f\n", (long long)hits, first_id, ((const double *)buffer)[6]);
    /* ABI 4: the same call with its arguments in one block; a failure leaves its error there. */
    if (sizeof(sdb_search_call) != 64) return 4;
    memset(buffer, 0, sizeof buffer);
    sdb_search_call call = {emb, &q, &plain, filter, buffer, sizeof buffer, NULL, 0};
    if (sdb_collection_search_call(&call) != SDB_OK || call.error != NULL) return 5;
    printf("call %lld hit: %s %.3f\n", (long long)buffer[0], first_id, ((const double *)buffer)[6]);
    call.capacity = 8;
    status = sdb_collection_search_call(&call);
    printf("status %d: %s\n", status, sdb_error_message(call.error));
    sdb_error_free(call.error);
    sdb_filter_free(filter);
    sdb_documents *found = NULL;
    CHECK(sdb_collection_get_documents(emb, 1, ids, id_offsets, &found, &error));
    const char *field_name = NULL;
    int64_t width = 0;
    const float *field_values = NULL;
    CHECK(sdb_documents_field(found, 0, &field_name, &width, NULL, NULL, &field_values, NULL));
    printf("get %s[%lld] %.1f %.1f %s\n", field_name, (long long)width, field_values[0], field_values[1],
           sdb_documents_attributes_json(found));
    sdb_documents_free(found);
    sdb_collection_free(emb);

    /* ABI 5: sdb_search_options.candidates. With max_query_terms 1 the traversal walks dimension
     * 1 alone: "a" (0.5) ranks before "b" (0.4) there, "b" first on the whole query (1.3). One
     * candidate (0 = k = 1) rescores "a" only; two rescore both. */
    sdb_collection *pruned = NULL;
    CHECK(sdb_database_create_collection(db, "pruned", 1, NULL, &dims, 0, &pruned, &error));
    const char ab[] = "ab";
    const int64_t ab_offsets[] = {0, 1, 2};
    const int64_t ab_indptr[] = {0, 1, 3};
    const uint32_t ab_indices[] = {1, 1, 2};
    const float ab_values[] = {0.5f, 0.4f, 1.0f};
    sdb_matrix ab_rows = {NULL, ab_indptr, ab_indices, ab_values, NULL, 0};
    CHECK(sdb_collection_upsert_matrix(pruned, 2, ab, ab_offsets, 1, &ab_rows, NULL, NULL, NULL, NULL, &error));
    const uint32_t two_indices[] = {1, 2};
    const float two_values[] = {1.0f, 0.9f};
    const int64_t two_indptr[] = {0, 2};
    sdb_matrix two = {NULL, two_indptr, two_indices, two_values, NULL, 0};
    sdb_search_options approximate = {1, 1, 0, 0, 1.0, NULL, SDB_MAXSCORE, 1, 0, 0};
    call = (sdb_search_call){pruned, &two, &approximate, NULL, buffer, sizeof buffer, NULL, 0};
    for (uint32_t candidates = 0; candidates <= 2; candidates += 2) {
        approximate.candidates = candidates;
        memset(buffer, 0, sizeof buffer);
        if (sdb_collection_search_call(&call) != SDB_OK || buffer[0] != 1) return 6;
        printf("candidates %u: %s %.3f\n", candidates, (const char *)buffer + 64 + 24 + 8, ((const double *)buffer)[6]);
    }
    approximate.candidates = (1u << 20) + 1;
    status = sdb_collection_search_call(&call);
    printf("status %d code %d: %s\n", status, sdb_error_code(call.error), sdb_error_message(call.error));
    sdb_error_free(call.error);
    call.error = NULL;
    approximate.k = 2;
    approximate.candidates = 1;
    status = sdb_collection_search_matrix(pruned, &two, 1, &approximate, &results, &error);
    printf("status %d code %d: %s\n", status, sdb_error_code(error), sdb_error_message(error));
    sdb_error_free(error);
    error = NULL;
    /* Hybrid: the field's ranking (depth 1) rescores max(depth, candidates) documents. */
    approximate.k = 1;
    approximate.candidates = 2;
    sdb_fusion_options fusion = {SDB_FUSION_RRF, 0, 1, -1.0, NULL};
    CHECK(sdb_collection_search_hybrid(pruned, 1, &two, 1, &approximate, &fusion, &results, &error));
    sdb_results_view(results, &n, &offsets, &scores, NULL, &id_data, &hit_id_offsets, NULL, NULL, NULL, NULL);
    printf("hybrid candidates 2: %.*s\n", (int)(hit_id_offsets[1] - hit_id_offsets[0]), id_data);
    sdb_results_free(results);
    sdb_collection_free(pruned);

    sdb_collection_free(docs);
    sdb_database_close(db);
    sdb_database_free(db);
    return 0;
}
