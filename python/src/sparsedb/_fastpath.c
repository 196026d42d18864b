/* sparsedb._fastpath: the one-query path of Collection.search({dim: weight}) in C.
 *
 * Optional: setup.py builds it when it can, and the package falls back to the same path in
 * Python (database.py, Collection._search_one) when it is absent or SPARSEDB_PURE_PYTHON=1. Both
 * write the same request, make the same call (sdb_collection_search_call, through the function
 * pointer ctypes found) and return the same hits; the tests run both.
 *
 * Why it exists: with a dict of ~50 entries and 10 hits, the Python path spends ~60,000
 * instructions per query around the engine: iterating the dict twice into a packing call, one
 * ctypes call (argument conversion, libffi), ten namedtuples made through tuple.__new__. Here
 * the same work is ~10 times fewer instructions and a far smaller code footprint, which also
 * leaves more of the caches to the engine (python/README.md, "Performance").
 *
 * Only the common case is handled; everything else returns a value that sends the caller back
 * to the Python code, which gives the messages:
 *   None   the query does not pack (a key not a uint32, a weight not a float32): nothing called;
 *   False  the call succeeded but the hits need the general reader (payloads, ids with a NUL,
 *          hits that did not fit the buffer);
 *   int    the call failed with this status (the error object is in the request block);
 *   list   the hits, as Hit tuples, best first.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef int32_t (*search_call_fn)(void *call);

/* Reads a pointer passed as a Python int (0 is allowed). */
static int pointer_arg(PyObject *o, void **out) {
    *out = PyLong_AsVoidPtr(o);
    return !(*out == NULL && PyErr_Occurred());
}

/* A dimension as struct's "I" takes it: an int (or an object with __index__) in 0 ... 2^32-1. */
static int dimension(PyObject *key, uint32_t *out) {
    unsigned long v;
    if (PyLong_CheckExact(key)) {
        v = PyLong_AsUnsignedLong(key);
    } else {
        PyObject *index = PyNumber_Index(key);
        if (index == NULL) return 0;
        v = PyLong_AsUnsignedLong(index);
        Py_DECREF(index);
    }
    if (v == (unsigned long)-1 && PyErr_Occurred()) return 0;
    if (v > UINT32_MAX) return 0;
    *out = (uint32_t)v;
    return 1;
}

/* A weight as struct's "f" takes it: a float (or anything float() takes through __float__ or
 * __index__), rounded to float32; finite values beyond float32's range do not pack. */
static int weight(PyObject *value, float *out) {
    double d = PyFloat_CheckExact(value) ? PyFloat_AS_DOUBLE(value) : PyFloat_AsDouble(value);
    if (d == -1.0 && PyErr_Occurred()) return 0;
    float f = (float)d;
    if (isinf(f) && !isinf(d)) return 0;
    *out = f;
    return 1;
}

/* search(query, function, call, dimensions, weights, entries, output, hit_type) */
static PyObject *search(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "search takes 8 arguments");
        return NULL;
    }
    PyObject *query = args[0];
    void *function, *call, *dims_p, *weights_p, *output_p;
    if (!pointer_arg(args[1], &function) || !pointer_arg(args[2], &call) || !pointer_arg(args[3], &dims_p) ||
        !pointer_arg(args[4], &weights_p) || !pointer_arg(args[6], &output_p))
        return NULL;
    Py_ssize_t entries = PyLong_AsSsize_t(args[5]);
    if (entries == -1 && PyErr_Occurred()) return NULL;
    PyTypeObject *hit_type = (PyTypeObject *)args[7];
    if (!PyDict_CheckExact(query) || !PyType_Check(args[7]) || !PyType_IsSubtype(hit_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "search: a dict query and a tuple type are needed");
        return NULL;
    }
    Py_ssize_t n = PyDict_GET_SIZE(query);
    if (n > entries || function == NULL || call == NULL) Py_RETURN_NONE;

    /* n (indptr[1], the int64 right before the dimensions), the dimensions, the weights. */
    uint32_t *dims = dims_p;
    float *weights = weights_p;
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(query, &pos, &key, &value)) {
        /* i < n: an __index__ or __float__ that grows the dict cannot write past the buffer; and
         * the key and value are held while such code runs, should it delete them from the dict. */
        Py_INCREF(key);
        Py_INCREF(value);
        int packed = i < n && dimension(key, &dims[i]) && weight(value, &weights[i]);
        Py_DECREF(key);
        Py_DECREF(value);
        if (!packed) {
            PyErr_Clear();
            Py_RETURN_NONE;  /* struct.error, OverflowError or TypeError in the Python path */
        }
        i++;
    }
    if (i != n) Py_RETURN_NONE;
    ((int64_t *)dims_p)[-1] = (int64_t)n;

    int32_t status;
    Py_BEGIN_ALLOW_THREADS
    status = ((search_call_fn)function)(call);
    Py_END_ALLOW_THREADS
    if (status != 0) return PyLong_FromLong(status);

    /* The layout of sparsedb.h (sdb_collection_search_into). */
    const char *out = output_p;
    const int64_t *header = (const int64_t *)out;
    int64_t h = header[0], id_bytes = header[1], payload_count = header[3];
    if (h < 0 || payload_count != 0) Py_RETURN_FALSE;
    const double *scores = (const double *)(out + 48);
    const int64_t *id_offsets = (const int64_t *)(out + 48 + 8 * h);
    const char *id_data = out + 64 + 24 * h + ((h + 7) & ~7);
    if (id_offsets[h] != id_bytes) Py_RETURN_FALSE;
    PyObject *hits = PyList_New((Py_ssize_t)h);
    if (hits == NULL) return NULL;
    for (int64_t j = 0; j < h; j++) {
        int64_t start = id_offsets[j], end = id_offsets[j + 1] - 1; /* each id is followed by a NUL */
        if (end < start || memchr(id_data + start, 0, (size_t)(end - start)) != NULL) {
            Py_DECREF(hits);
            Py_RETURN_FALSE;  /* an id holding a NUL: the general reader */
        }
        PyObject *id = PyUnicode_DecodeUTF8(id_data + start, (Py_ssize_t)(end - start), NULL);
        if (id == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            Py_DECREF(hits);
            Py_RETURN_FALSE;  /* the general reader raises it as it always did */
        }
        PyObject *score = id == NULL ? NULL : PyFloat_FromDouble(scores[j]);
        PyObject *hit = score == NULL ? NULL : hit_type->tp_alloc(hit_type, 3);
        if (hit == NULL) {
            Py_XDECREF(id);
            Py_XDECREF(score);
            Py_DECREF(hits);
            return NULL;
        }
        PyTuple_SET_ITEM(hit, 0, id);
        PyTuple_SET_ITEM(hit, 1, score);
        Py_INCREF(Py_None);
        PyTuple_SET_ITEM(hit, 2, Py_None);
        PyList_SET_ITEM(hits, (Py_ssize_t)j, hit);
    }
    return hits;
}

static PyMethodDef methods[] = {
    {"search", (PyCFunction)(void (*)(void))search, METH_FASTCALL,
     "search(query, function, call, dimensions, weights, entries, output, hit_type): one dict query "
     "through sdb_collection_search_call (see the module's source for what it returns)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "sparsedb._fastpath", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastpath(void) { return PyModule_Create(&module); }
