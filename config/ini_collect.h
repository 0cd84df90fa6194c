/*
 * First pass over an INI file: collect every section header and key with its
 * line number (inih does not report line numbers to handlers, so our reader
 * counts lines itself). The second pass (config.c) interprets the entries.
 */
#ifndef ESPROXY_INI_COLLECT_H
#define ESPROXY_INI_COLLECT_H

#include <stdbool.h>
#include <stdio.h>

struct ini_section {
    char *name;         /* full header text, e.g. "tunnel main" */
    int line;
};

struct ini_entry {
    int section;        /* index into sections */
    char *key;
    char *value;
    int line;
};

struct ini_doc {
    struct ini_section *sections;
    int n_sections;
    struct ini_entry *entries;
    int n_entries;
    int syntax_error_line;  /* first line inih could not parse, or 0 */
    int long_line;          /* first line longer than the parser's limit, or 0 */
    int errno_open;         /* errno when the file could not be opened */
};

/* Returns 0, or -1 when out of memory. Open failures set doc->errno_open. */
int ini_collect_file(const char *path, struct ini_doc *doc);
int ini_collect_add(struct ini_doc *doc, int section, const char *key,
                    const char *value, int line);
int ini_collect_section(struct ini_doc *doc, const char *name, int line);
void ini_collect_free(struct ini_doc *doc);

#endif
