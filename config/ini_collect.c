#include "config/ini_collect.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

struct reader_state {
    FILE *fp;
    struct ini_doc *doc;
    int line;
    int oom;
};

static char *ini_strdup_trim(const char *s, size_t n)
{
    char *out;

    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

int ini_collect_section(struct ini_doc *doc, const char *name, int line)
{
    struct ini_section *s;

    s = realloc(doc->sections, sizeof(*s) * (size_t)(doc->n_sections + 1));
    if (s == NULL)
        return -1;
    doc->sections = s;
    s = &doc->sections[doc->n_sections];
    s->name = ini_strdup_trim(name, strlen(name));
    if (s->name == NULL)
        return -1;
    s->line = line;
    doc->n_sections++;
    return 0;
}

int ini_collect_add(struct ini_doc *doc, int section, const char *key,
                    const char *value, int line)
{
    struct ini_entry *e;

    e = realloc(doc->entries, sizeof(*e) * (size_t)(doc->n_entries + 1));
    if (e == NULL)
        return -1;
    doc->entries = e;
    e = &doc->entries[doc->n_entries];
    e->key = strdup(key);
    e->value = strdup(value);
    if (e->key == NULL || e->value == NULL) {
        free(e->key);
        free(e->value);
        return -1;
    }
    e->section = section;
    e->line = line;
    doc->n_entries++;
    return 0;
}

/* Section headers are recorded here, where the line number is known, so that
 * empty sections and unknown sections can be reported at their line. */
static void ini_reader_note_header(struct reader_state *st, const char *line)
{
    const char *p = line, *end;

    while (isspace((unsigned char)*p))
        p++;
    if (*p != '[')
        return;
    end = strchr(p, ']');
    if (end == NULL)
        return;         /* inih reports the syntax error */
    {
        char name[256];
        size_t n = (size_t)(end - p - 1);

        if (n >= sizeof(name))
            n = sizeof(name) - 1;
        memcpy(name, p + 1, n);
        name[n] = '\0';
        if (ini_collect_section(st->doc, name, st->line) != 0)
            st->oom = 1;
    }
}

static char *ini_collect_read_line(char *str, int num, void *stream)
{
    struct reader_state *st = stream;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    n = getline(&line, &cap, st->fp);
    if (n < 0) {
        free(line);
        return NULL;
    }
    st->line++;
    if (n >= num - 1) {
        /* Longer than inih's buffer: it would split the line silently. */
        if (st->doc->long_line == 0)
            st->doc->long_line = st->line;
        str[0] = '\n';
        str[1] = '\0';
    } else {
        memcpy(str, line, (size_t)n + 1);
        ini_reader_note_header(st, str);
    }
    free(line);
    return str;
}

static int ini_collect_on_key(void *user, const char *section, const char *name,
                       const char *value)
{
    struct reader_state *st = user;
    struct ini_doc *doc = st->doc;
    int idx = doc->n_sections - 1;

    (void)section;      /* the reader recorded it, with its line */
    if (ini_collect_add(doc, idx, name, value, st->line) != 0) {
        st->oom = 1;
        return 0;
    }
    return 1;
}

int ini_collect_file(const char *path, struct ini_doc *doc)
{
    struct reader_state st;
    int rc;

    memset(doc, 0, sizeof(*doc));
    memset(&st, 0, sizeof(st));
    st.fp = fopen(path, "r");
    if (st.fp == NULL) {
        doc->errno_open = errno;
        return 0;
    }
    st.doc = doc;
    rc = ini_parse_stream(ini_collect_read_line, &st, ini_collect_on_key, &st);
    fclose(st.fp);
    if (st.oom)
        return -1;
    if (rc > 0)
        doc->syntax_error_line = rc;
    else if (rc < 0)
        return -1;
    return 0;
}

void ini_collect_free(struct ini_doc *doc)
{
    for (int i = 0; i < doc->n_sections; i++)
        free(doc->sections[i].name);
    for (int i = 0; i < doc->n_entries; i++) {
        free(doc->entries[i].key);
        if (doc->entries[i].value != NULL) {
            /* values may be secrets (psk): wipe before freeing */
            explicit_bzero(doc->entries[i].value, strlen(doc->entries[i].value));
            free(doc->entries[i].value);
        }
    }
    free(doc->sections);
    free(doc->entries);
    memset(doc, 0, sizeof(*doc));
}
