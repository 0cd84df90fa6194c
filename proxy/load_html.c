/*
 * The drill report as one self-contained HTML page: the text summary and
 * an inline SVG timeline of the 100 ms buckets. Successes/s (green) and
 * errors/s (red) on the left axis, p99 session latency (blue) on the right
 * axis, the action as a dashed vertical line, the outage window shaded.
 * No scripts, no external fonts, images or style sheets.
 */
#include "proxy/load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define W 1100.0
#define H 440.0
#define ML 70.0
#define MR 80.0
#define MT 40.0
#define MB 50.0

struct chart {
    double t0, t1;          /* seconds around the action */
    double ymax, lmax;      /* sessions/s, ms */
};

static double nice_max(double v)
{
    double e, m;

    if (v <= 0)
        return 1;
    e = pow(10, floor(log10(v)));
    m = v / e;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * e;
}

static double cx(const struct chart *c, double t)
{
    return ML + (t - c->t0) / (c->t1 - c->t0) * (W - ML - MR);
}

static double cy(double v, double max)
{
    return H - MB - v / max * (H - MT - MB);
}

static void html_escape(const char *s, FILE *f)
{
    for (; s && *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

static double bucket_t(const struct drill_result *r, int b)
{
    return ((b + 0.5) * r->bucket_ms - r->action_ms) / 1000.0;
}

static void series(const struct drill_result *r, const struct chart *c, FILE *f, const char *id,
                   const char *color, int which)
{
    double per_s = 1000.0 / r->bucket_ms;
    bool pen = false;

    fprintf(f, "<path id=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" d=\"", id, color,
            which == 2 ? "1.5" : "2");
    for (int b = 0; b < r->n_buckets; b++) {
        const struct load_bucket *k = &r->buckets[b];
        double v;

        if (which == 2 && k->ok == 0) {     /* no latency without a success */
            pen = false;
            continue;
        }
        v = which == 0 ? k->ok * per_s : which == 1 ? k->failed * per_s : k->p99_ms;
        fprintf(f, "%s%.1f %.1f ", pen ? "L" : "M", cx(c, bucket_t(r, b)), cy(v, which == 2 ? c->lmax : c->ymax));
        pen = true;
    }
    fputs("\"/>\n", f);
}

static void axes(const struct chart *c, FILE *f)
{
    double step = nice_max((c->t1 - c->t0) / 10);

    fprintf(f, "<g font-family=\"sans-serif\" font-size=\"12\" fill=\"#333\">\n");
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#999\"/>\n",
            ML, MT, W - ML - MR, H - MT - MB);
    for (double t = ceil(c->t0 / step) * step; t <= c->t1; t += step) {
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#eee\"/>", cx(c, t), cx(c, t),
                MT, H - MB);
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%+.1f</text>\n", cx(c, t), H - MB + 16,
                fabs(t) < 1e-9 ? 0.0 : t);
    }
    for (int i = 0; i <= 5; i++) {
        double y = cy(c->ymax * i / 5, c->ymax);

        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%g</text>", ML - 6, y + 4, c->ymax * i / 5);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" fill=\"#1f5fbf\">%g</text>\n", W - MR + 6, y + 4, c->lmax * i / 5);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">seconds from the action</text>\n",
            (ML + W - MR) / 2, H - 12);
    fprintf(f, "<text x=\"16\" y=\"%.0f\" transform=\"rotate(-90 16 %.0f)\" text-anchor=\"middle\">sessions per second</text>\n",
            H / 2, H / 2);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" transform=\"rotate(90 %.0f %.0f)\" text-anchor=\"middle\" fill=\"#1f5fbf\">p99 latency (ms)</text>\n",
            W - 20, H / 2, W - 20, H / 2);
    fprintf(f, "</g>\n");
}

static void legend(FILE *f)
{
    static const char *const items[][2] = {
        { "#2a9d3a", "successful sessions/s" }, { "#d62828", "failed sessions/s" },
        { "#1f5fbf", "p99 session latency (ms, right axis)" }, { "#555", "action" },
    };

    static const double at[4] = { 0, 200, 380, 660 };

    fprintf(f, "<g id=\"legend\" font-family=\"sans-serif\" font-size=\"12\">\n");
    for (int i = 0; i < 4; i++) {
        double x = ML + at[i];

        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"20\" y2=\"20\" stroke=\"%s\" stroke-width=\"3\"%s/>", x, x + 24,
                items[i][0], i == 3 ? " stroke-dasharray=\"5 3\"" : "");
        fprintf(f, "<text x=\"%.0f\" y=\"24\">%s</text>\n", x + 30, items[i][1]);
    }
    fprintf(f, "<rect x=\"%.0f\" y=\"12\" width=\"20\" height=\"14\" fill=\"#f4c7c3\"/><text x=\"%.0f\" y=\"24\">outage</text>\n",
            W - MR - 60, W - MR - 36);
    fprintf(f, "</g>\n");
}

static void chart_svg(const struct drill_result *r, FILE *f)
{
    struct chart c = { 0, 0, 0, 0 };
    double per_s = 1000.0 / r->bucket_ms;

    c.t0 = -r->action_ms / 1000.0;
    c.t1 = (r->n_buckets * r->bucket_ms - r->action_ms) / 1000.0;
    if (c.t1 <= c.t0)
        c.t1 = c.t0 + 1;
    for (int b = 0; b < r->n_buckets; b++) {
        double v = (r->buckets[b].ok > r->buckets[b].failed ? r->buckets[b].ok : r->buckets[b].failed) * per_s;

        c.ymax = v > c.ymax ? v : c.ymax;
        c.lmax = r->buckets[b].p99_ms > c.lmax ? r->buckets[b].p99_ms : c.lmax;
    }
    c.ymax = nice_max(c.ymax * 1.05);
    c.lmax = nice_max(c.lmax * 1.05);
    fprintf(f, "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"drill timeline\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
    if (r->outage_start_ms >= 0) {
        double a = cx(&c, (r->outage_start_ms - r->action_ms) / 1000.0);
        double b = r->outage_end_ms >= 0 ? cx(&c, (r->outage_end_ms - r->action_ms) / 1000.0) : W - MR;

        fprintf(f, "<rect id=\"outage-window\" x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" fill=\"#f4c7c3\"/>\n",
                a, MT, b - a > 1 ? b - a : 1, H - MT - MB);
    }
    axes(&c, f);
    series(r, &c, f, "series-success", "#2a9d3a", 0);
    series(r, &c, f, "series-errors", "#d62828", 1);
    series(r, &c, f, "series-p99", "#1f5fbf", 2);
    fprintf(f, "<g id=\"action-marker\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#555\" "
            "stroke-width=\"2\" stroke-dasharray=\"5 3\"/><text x=\"%.1f\" y=\"%.0f\" font-family=\"sans-serif\" "
            "font-size=\"12\">action</text></g>\n", cx(&c, 0), cx(&c, 0), MT, H - MB, cx(&c, 0) + 4, MT + 14);
    legend(f);
    fputs("</svg>\n", f);
}

void drill_report_html(const struct drill_result *r, FILE *f)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);

    if (m != NULL) {
        drill_report_text(r, m);
        fclose(m);
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>esproxy drill: ", f);
    html_escape(r->label, f);
    fputs("</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}"
          "pre{background:#f6f6f6;padding:12px;white-space:pre-wrap}</style></head><body>\n<h1>esproxy drill: ", f);
    html_escape(r->label, f);
    fputs("</h1>\n", f);
    chart_svg(r, f);
    fputs("<pre id=\"summary\">", f);
    html_escape(text, f);
    fputs("</pre>\n<p>Buckets of 100 ms by session end. A session is one login-to-logout dialogue "
          "(or one keep-alive HTTP connection).</p>\n</body></html>\n", f);
    free(text);
}
