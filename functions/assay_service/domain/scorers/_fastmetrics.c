/* _fastmetrics: the two inner loops of the n-gram metrics, in C.
 *
 * textmetrics.py tokenizes (regular expressions, C-level already) and does the arithmetic;
 * these functions count what two token tuples share, without building a Python object per
 * n-gram (the cost that dominated BLEU, ROUGE and token F1 in pure Python):
 *
 *   ngram_matches(a, b, max_n) -> (m1, ..., m_max_n)
 *       m_n = sum over distinct n-grams g of min(count_a(g), count_b(g)), the multiset
 *       intersection of Counter-of-n-grams that BLEU, ROUGE-N and SQuAD F1 use.
 *   pad_13a(line) -> str
 *       mteval-v13a's four regular-expression rules (sacrebleu's Tokenizer13a, after its
 *       plain string replacements) in one pass each over the code points; the caller
 *       splits the result on whitespace with str.split(), so "whitespace" stays Python's.
 *   alnum_runs(line) -> tuple[str, ...]
 *       rouge-score's tokens of an ASCII, already lower-cased line: the runs of [a-z0-9]
 *       (= re.findall(r"[a-z0-9]+", line)).
 *   squad_words(line) -> tuple[str, ...] | None
 *       the SQuAD v1.1 normalize_answer(line).split() of an ASCII, already lower-cased
 *       line: punctuation dropped, split on whitespace, the articles a/an/the removed;
 *       None when a word holds a control character (where the script's \b would cut
 *       inside a word), which the caller's regular expressions handle.
 *   lcs_length(a, b) -> int
 *       the longest common subsequence of two token tuples (ROUGE-L), bit-parallel
 *       (Allison-Dix / Hyyro) over 64-bit words; None when the bit tables would pass
 *       LCS_MAX_WORDS, so the caller falls back to its Python version for huge inputs.
 *
 * Tokens compare with ==, as in Python (identity, then hash, then __eq__), so results are
 * exact: a hash collision never makes two different tokens equal. The pure-Python twins
 * in textmetrics.py are the specification; tests/parity runs both against the reference
 * libraries. Built for the host (tests, local stack) and for the Lambda's arm64 by
 * tools/native.py with the pinned zig toolchain; the stable ABI (abi3) keeps one binary
 * per architecture valid for Python 3.12 and later.
 */
#define Py_LIMITED_API 0x030C0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

_Static_assert(sizeof(wchar_t) == sizeof(Py_UCS4), "wchar_t must hold a code point (Linux)");

#define LCS_MAX_WORDS (4 * 1024 * 1024) /* 32 MB of match masks */

typedef struct {
    Py_hash_t hash;
    PyObject *token; /* borrowed from the caller's tuple */
    Py_ssize_t id;   /* -1: empty slot */
} slot_t;

typedef struct {
    slot_t *slots;
    size_t mask;
    Py_ssize_t next_id;
} interner_t;

static size_t table_size(Py_ssize_t items) {
    size_t size = 8;
    while (size < (size_t)items * 2) size <<= 1;
    return size;
}

static int interner_init(interner_t *in, Py_ssize_t items) {
    size_t size = table_size(items);
    in->slots = PyMem_Malloc(size * sizeof(slot_t));
    if (in->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < size; i++) in->slots[i].id = -1;
    in->mask = size - 1;
    in->next_id = 0;
    return 0;
}

/* The id of ``token``: an existing one if an equal token was seen, else a new one when
 * ``insert`` (else -1). -2 on error (exception set). */
static Py_ssize_t interner_id(interner_t *in, PyObject *token, int insert) {
    Py_hash_t hash = PyObject_Hash(token);
    if (hash == -1 && PyErr_Occurred()) return -2;
    /* Mix before masking: hashes sharing their low bits (ints) must not share slots. */
    uint64_t mixed = (uint64_t)hash;
    mixed ^= mixed >> 33;
    mixed *= 0xff51afd7ed558ccdULL;
    mixed ^= mixed >> 33;
    size_t i = (size_t)mixed & in->mask;
    for (;;) {
        slot_t *slot = &in->slots[i];
        if (slot->id < 0) {
            if (!insert) return -1;
            slot->hash = hash;
            slot->token = token;
            slot->id = in->next_id++;
            return slot->id;
        }
        if (slot->hash == hash) {
            if (slot->token == token) return slot->id;
            int equal = PyObject_RichCompareBool(slot->token, token, Py_EQ);
            if (equal < 0) return -2;
            if (equal) return slot->id;
        }
        i = (i + 1) & in->mask;
    }
}

/* Ids for every item of ``tokens``; returns -1 on error. */
static int intern_all(interner_t *in, PyObject *tokens, Py_ssize_t *ids, int insert) {
    Py_ssize_t n = PyTuple_Size(tokens);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t id = interner_id(in, PyTuple_GetItem(tokens, i), insert);
        if (id == -2) return -1;
        ids[i] = id;
    }
    return 0;
}

static int check_tuples(PyObject *a, PyObject *b) {
    if (!PyTuple_Check(a) || !PyTuple_Check(b)) {
        PyErr_SetString(PyExc_TypeError, "tokens must be tuples");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ n-gram matches */
typedef struct {
    uint64_t hash;
    Py_ssize_t start; /* where the n-gram starts in b's ids; -1: empty */
    Py_ssize_t count;
} gram_t;

static uint64_t gram_hash(const Py_ssize_t *ids, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int k = 0; k < n; k++) {
        h ^= (uint64_t)ids[k] + 0x9e3779b97f4a7c15ULL;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

/* Sum of min counts of the n-grams of ia (length la) and ib (length lb). */
static Py_ssize_t count_matches(const Py_ssize_t *ia, Py_ssize_t la, const Py_ssize_t *ib,
                                Py_ssize_t lb, int n, gram_t *table, size_t mask) {
    if (la < n || lb < n) return 0;
    for (size_t i = 0; i <= mask; i++) table[i].start = -1;
    size_t bytes = (size_t)n * sizeof(Py_ssize_t);
    for (Py_ssize_t j = 0; j + n <= lb; j++) {
        uint64_t h = gram_hash(ib + j, n);
        size_t i = (size_t)h & mask;
        for (;;) {
            gram_t *g = &table[i];
            if (g->start < 0) {
                g->hash = h;
                g->start = j;
                g->count = 1;
                break;
            }
            if (g->hash == h && memcmp(ib + g->start, ib + j, bytes) == 0) {
                g->count++;
                break;
            }
            i = (i + 1) & mask;
        }
    }
    Py_ssize_t matches = 0;
    for (Py_ssize_t j = 0; j + n <= la; j++) {
        uint64_t h = gram_hash(ia + j, n);
        size_t i = (size_t)h & mask;
        for (;;) {
            gram_t *g = &table[i];
            if (g->start < 0) break;
            if (g->hash == h && memcmp(ib + g->start, ia + j, bytes) == 0) {
                if (g->count > 0) {
                    g->count--;
                    matches++;
                }
                break;
            }
            i = (i + 1) & mask;
        }
    }
    return matches;
}

static PyObject *ngram_matches(PyObject *self, PyObject *args) {
    PyObject *a, *b, *result = NULL;
    int max_n;
    if (!PyArg_ParseTuple(args, "OOi:ngram_matches", &a, &b, &max_n)) return NULL;
    if (check_tuples(a, b) < 0) return NULL;
    if (max_n < 1 || max_n > 64) {
        PyErr_SetString(PyExc_ValueError, "max_n must be in 1..64");
        return NULL;
    }
    Py_ssize_t la = PyTuple_Size(a), lb = PyTuple_Size(b);
    interner_t in = {0};
    Py_ssize_t *ids = PyMem_Malloc((size_t)(la + lb + 1) * sizeof(Py_ssize_t));
    size_t size = table_size(lb);
    gram_t *table = PyMem_Malloc(size * sizeof(gram_t));
    if (ids == NULL || table == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (interner_init(&in, la + lb) < 0) goto done;
    if (intern_all(&in, a, ids, 1) < 0 || intern_all(&in, b, ids + la, 1) < 0) goto done;
    result = PyTuple_New(max_n);
    if (result == NULL) goto done;
    for (int n = 1; n <= max_n; n++) {
        PyObject *count = PyLong_FromSsize_t(count_matches(ids, la, ids + la, lb, n, table, size - 1));
        if (count == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyTuple_SetItem(result, n - 1, count);
    }
done:
    PyMem_Free(in.slots);
    PyMem_Free(ids);
    PyMem_Free(table);
    return result;
}

/* ------------------------------------------------------------------ 13a rules */
static int is_digit(Py_UCS4 c) { return c >= '0' && c <= '9'; }
static int is_point(Py_UCS4 c) { return c == '.' || c == ','; }

/* The first rule's class [\{-\~\[-\`\!-\&\(-\+\:-\@\/] (the space left out: padding a
 * space with spaces changes no token). */
static int is_pad(Py_UCS4 c) {
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= '!' && c <= '&') ||
           (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

static int not_digit(Py_UCS4 c) { return !is_digit(c); }
static int is_dash(Py_UCS4 c) { return c == '-'; }

/* The three later rules are one shape: re.sub(r"(X)(Y)", r"\1 \2 " or r" \1 \2", s),
 * leftmost, non-overlapping pairs. */
typedef struct {
    int (*first)(Py_UCS4);
    int (*second)(Py_UCS4);
    int space_before; /* r" \1 \2" rather than r"\1 \2 " */
} pair_rule_t;

static const pair_rule_t PAIR_RULES[] = {
    {not_digit, is_point, 0}, /* ([^0-9])([\.,]) -> \1 \2  */
    {is_point, not_digit, 1}, /* ([\.,])([^0-9]) ->  \1 \2 */
    {is_digit, is_dash, 0},   /* ([0-9])(-)      -> \1 \2  */
};

static inline __attribute__((always_inline)) Py_ssize_t
apply_pair_rule(const pair_rule_t *rule, const Py_UCS4 *s, Py_ssize_t n, Py_UCS4 *out) {
    Py_ssize_t o = 0, i = 0;
    while (i < n) {
        if (i + 1 < n && rule->first(s[i]) && rule->second(s[i + 1])) {
            if (rule->space_before) out[o++] = ' ';
            out[o++] = s[i];
            out[o++] = ' ';
            out[o++] = s[i + 1];
            if (!rule->space_before) out[o++] = ' ';
            i += 2;
        } else {
            out[o++] = s[i++];
        }
    }
    return o;
}

/* Room for a rule's output: at most twice its input (2 code points in, 4 out). */
static Py_UCS4 *room(Py_UCS4 *buf, size_t *cap, Py_ssize_t len) {
    size_t need = 2 * (size_t)len + 1;
    if (need <= *cap) return buf;
    Py_UCS4 *grown = PyMem_Realloc(buf, need * sizeof(Py_UCS4));
    if (grown == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    *cap = need;
    return grown;
}

static PyObject *pad_13a(PyObject *self, PyObject *args) {
    PyObject *line, *result = NULL;
    if (!PyArg_ParseTuple(args, "U:pad_13a", &line)) return NULL;
    Py_ssize_t n = PyUnicode_GetLength(line);
    if (n < 0) return NULL;
    if (n > (PY_SSIZE_T_MAX - 2) / 12) return PyErr_NoMemory(); /* 3n + 2 code points, x4 */
    Py_UCS4 *text = PyUnicode_AsUCS4Copy(line), *a = NULL, *b = NULL, *t;
    if (text == NULL) return NULL;
    size_t cap_a = 3 * (size_t)n + 2, cap_b = 0;
    a = PyMem_Malloc(cap_a * sizeof(Py_UCS4));
    if (a == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* rule 1 on f" {line} ": every padded character becomes " c " */
    Py_ssize_t len = 0;
    a[len++] = ' ';
    for (Py_ssize_t i = 0; i < n; i++) {
        if (is_pad(text[i])) {
            a[len++] = ' ';
            a[len++] = text[i];
            a[len++] = ' ';
        } else {
            a[len++] = text[i];
        }
    }
    a[len++] = ' ';
    /* the pair rules, each from one buffer into the other */
    Py_UCS4 **src = &a, **dst = &b;
    size_t *dst_cap = &cap_b, *src_cap = &cap_a;
#pragma clang loop unroll(full) /* constant rules: each pass compiles to its own loop */
    for (size_t r = 0; r < sizeof(PAIR_RULES) / sizeof(PAIR_RULES[0]); r++) {
        if ((t = room(*dst, dst_cap, len)) == NULL) goto done;
        *dst = t;
        len = apply_pair_rule(&PAIR_RULES[r], *src, len, *dst);
        Py_UCS4 **swap = src;
        src = dst;
        dst = swap;
        size_t *swap_cap = src_cap;
        src_cap = dst_cap;
        dst_cap = swap_cap;
    }
    result = PyUnicode_FromWideChar((const wchar_t *)*src, len);
done:
    PyMem_Free(text);
    PyMem_Free(a);
    PyMem_Free(b);
    return result;
}

/* ------------------------------------------------------------------ ASCII tokenizers */
/* The ASCII bytes of an ASCII str (zero-copy); NULL with ValueError otherwise. */
static const char *ascii_bytes(PyObject *line, Py_ssize_t *n) {
    const char *bytes = PyUnicode_AsUTF8AndSize(line, n);
    if (bytes == NULL) return NULL;
    for (Py_ssize_t i = 0; i < *n; i++) {
        if ((unsigned char)bytes[i] >= 0x80) {
            PyErr_SetString(PyExc_ValueError, "line must be ASCII");
            return NULL;
        }
    }
    return bytes;
}

/* Append bytes[start:end] to ``list`` as a str; -1 on error. */
static int append_word(PyObject *list, const char *bytes, Py_ssize_t start, Py_ssize_t end) {
    PyObject *word = PyUnicode_FromStringAndSize(bytes + start, end - start);
    if (word == NULL) return -1;
    int status = PyList_Append(list, word);
    Py_DECREF(word);
    return status;
}

static int is_lower_alnum(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

static PyObject *alnum_runs(PyObject *self, PyObject *args) {
    PyObject *line;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "U:alnum_runs", &line)) return NULL;
    const char *bytes = ascii_bytes(line, &n);
    if (bytes == NULL) return NULL;
    PyObject *words = PyList_New(0);
    if (words == NULL) return NULL;
    Py_ssize_t i = 0;
    while (i < n) {
        while (i < n && !is_lower_alnum((unsigned char)bytes[i])) i++;
        Py_ssize_t start = i;
        while (i < n && is_lower_alnum((unsigned char)bytes[i])) i++;
        if (i > start && append_word(words, bytes, start, i) < 0) {
            Py_DECREF(words);
            return NULL;
        }
    }
    PyObject *result = PyList_AsTuple(words);
    Py_DECREF(words);
    return result;
}

/* string.punctuation: !-/ :-@ [-` {-~ */
static int is_punct(unsigned char c) {
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
           (c >= '{' && c <= '~');
}

/* str.split()'s whitespace among ASCII: \t\n\v\f\r, the separators \x1c-\x1f, space. */
static int is_space(unsigned char c) { return (c >= 9 && c <= 13) || (c >= 28 && c <= 32); }

static int is_article(const char *w, Py_ssize_t len) {
    return (len == 1 && w[0] == 'a') || (len == 2 && w[0] == 'a' && w[1] == 'n') ||
           (len == 3 && w[0] == 't' && w[1] == 'h' && w[2] == 'e');
}

static PyObject *squad_words(PyObject *self, PyObject *args) {
    PyObject *line;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "U:squad_words", &line)) return NULL;
    const char *bytes = ascii_bytes(line, &n);
    if (bytes == NULL) return NULL;
    char *kept = PyMem_Malloc((size_t)n + 1); /* the line without punctuation */
    if (kept == NULL) return PyErr_NoMemory();
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!is_punct((unsigned char)bytes[i])) kept[m++] = bytes[i];
    }
    PyObject *words = PyList_New(0), *result = NULL;
    if (words == NULL) goto done;
    Py_ssize_t i = 0;
    while (i < m) {
        while (i < m && is_space((unsigned char)kept[i])) i++;
        Py_ssize_t start = i;
        while (i < m && !is_space((unsigned char)kept[i])) {
            if (!is_lower_alnum((unsigned char)kept[i]) && !(kept[i] >= 'A' && kept[i] <= 'Z')) {
                result = Py_NewRef(Py_None); /* a control character inside a word */
                goto done;
            }
            i++;
        }
        if (i > start && !is_article(kept + start, i - start) &&
            append_word(words, kept, start, i) < 0)
            goto done;
    }
    result = PyList_AsTuple(words);
done:
    Py_XDECREF(words);
    PyMem_Free(kept);
    return result;
}

/* ------------------------------------------------------------------ LCS */
static PyObject *lcs_length(PyObject *self, PyObject *args) {
    PyObject *a, *b, *result = NULL;
    if (!PyArg_ParseTuple(args, "OO:lcs_length", &a, &b)) return NULL;
    if (check_tuples(a, b) < 0) return NULL;
    /* LCS is symmetric (for an == that is an equivalence): bits over the shorter tuple. */
    if (PyTuple_Size(a) > PyTuple_Size(b)) {
        PyObject *t = a;
        a = b;
        b = t;
    }
    Py_ssize_t m = PyTuple_Size(a), lb = PyTuple_Size(b);
    if (m == 0 || lb == 0) return PyLong_FromLong(0);
    Py_ssize_t words = (m + 63) / 64;
    interner_t in = {0};
    Py_ssize_t *ids = PyMem_Malloc((size_t)(m + lb) * sizeof(Py_ssize_t));
    uint64_t *masks = NULL, *v = NULL;
    if (ids == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (interner_init(&in, m) < 0) goto done;
    if (intern_all(&in, a, ids, 1) < 0 || intern_all(&in, b, ids + m, 0) < 0) goto done;
    Py_ssize_t distinct = in.next_id;
    if (distinct > LCS_MAX_WORDS / words) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    masks = PyMem_Calloc((size_t)(distinct * words), sizeof(uint64_t));
    v = PyMem_Malloc((size_t)words * sizeof(uint64_t));
    if (masks == NULL || v == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < m; i++) masks[ids[i] * words + i / 64] |= 1ULL << (i % 64);
    for (Py_ssize_t w = 0; w < words; w++) v[w] = ~0ULL;
    uint64_t top = (m % 64) ? ((1ULL << (m % 64)) - 1) : ~0ULL;
    v[words - 1] = top;
    for (Py_ssize_t j = 0; j < lb; j++) {
        Py_ssize_t id = ids[m + j];
        if (id < 0) continue; /* not in a: no match bit, v unchanged */
        const uint64_t *mk = masks + id * words;
        uint64_t carry = 0;
        for (Py_ssize_t w = 0; w < words; w++) {
            uint64_t old = v[w], u = old & mk[w];
            uint64_t sum = old + u;
            uint64_t c1 = sum < old;
            uint64_t total = sum + carry;
            carry = c1 | (total < sum);
            v[w] = total | (old & ~mk[w]);
        }
        v[words - 1] &= top;
    }
    Py_ssize_t zeros = m;
    for (Py_ssize_t w = 0; w < words; w++) zeros -= __builtin_popcountll(v[w]);
    result = PyLong_FromSsize_t(zeros);
done:
    PyMem_Free(in.slots);
    PyMem_Free(ids);
    PyMem_Free(masks);
    PyMem_Free(v);
    return result;
}

static PyMethodDef methods[] = {
    {"ngram_matches", ngram_matches, METH_VARARGS,
     "ngram_matches(a, b, max_n) -> per order n = 1..max_n, the size of the multiset\n"
     "intersection of the n-grams of token tuples a and b."},
    {"pad_13a", pad_13a, METH_VARARGS,
     "pad_13a(line) -> line with mteval-v13a's regular-expression rules applied."},
    {"alnum_runs", alnum_runs, METH_VARARGS,
     "alnum_runs(line) -> the runs of [a-z0-9] in an ASCII line, as a tuple."},
    {"squad_words", squad_words, METH_VARARGS,
     "squad_words(line) -> SQuAD v1.1 normalize_answer(line).split() of an ASCII\n"
     "lower-cased line, or None when a word holds a control character."},
    {"lcs_length", lcs_length, METH_VARARGS,
     "lcs_length(a, b) -> length of the longest common subsequence of two token tuples,\n"
     "or None when the inputs are too large for the bit tables."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastmetrics",
    "The inner loops of the n-gram metrics (see textmetrics.py).", 0, methods, slots,
    NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastmetrics(void) { return PyModuleDef_Init(&module); }
