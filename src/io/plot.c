#include "io/plot.h"
#include "common.h"
#include <math.h>
#include <stb_image_write.h>
#include <stdlib.h>
#include <string.h>

// stb_easy_font is all static functions; not every one of them is used here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

#define MAX_TICKS 64
#define LINE_HALF_WIDTH 0.9

static const unsigned char PALETTE[10][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
    {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};
static const unsigned char BLACK[3] = {0, 0, 0}, GRID[3] = {225, 225, 225}, FRAME[3] = {90, 90, 90},
                           WHITE[3] = {255, 255, 255};

// ---- Plot object -------------------------------------------------------------------------------

void plot_init(Plot *p, const char *title, const char *xlabel, const char *ylabel) {
    memset(p, 0, sizeof *p);
    p->title = xstrdup(title ? title : "");
    p->xlabel = xstrdup(xlabel ? xlabel : "");
    p->ylabel = xstrdup(ylabel ? ylabel : "");
    p->antialias = 1;
    p->legend = 1;
}

void plot_add_series(Plot *p, const char *name, const double *x, const double *y, int n) {
    p->series = xrealloc(p->series, (size_t)(p->nseries + 1) * sizeof(PlotSeries));
    PlotSeries *s = &p->series[p->nseries];
    s->name = xstrdup(name ? name : "");
    s->n = n;
    s->x = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    s->y = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (n > 0) {
        memcpy(s->x, x, (size_t)n * sizeof(double));
        memcpy(s->y, y, (size_t)n * sizeof(double));
    }
    memcpy(s->rgb, PALETTE[p->nseries % 10], 3);
    p->nseries++;
}

void plot_free(Plot *p) {
    for (int i = 0; i < p->nseries; i++) {
        free(p->series[i].name);
        free(p->series[i].x);
        free(p->series[i].y);
    }
    free(p->series);
    free(p->title);
    free(p->xlabel);
    free(p->ylabel);
    memset(p, 0, sizeof *p);
}

// ---- Axes --------------------------------------------------------------------------------------

PlotAxis plot_nice_axis(double lo, double hi, int max_ticks) {
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (hi < lo) { double t = lo; lo = hi; hi = t; }
    if (hi == lo) {
        double d = lo == 0 ? 1 : fabs(lo) * 0.1;
        lo -= d, hi += d;
    }
    if (max_ticks < 2) max_ticks = 2;
    double raw = (hi - lo) / (max_ticks - 1), mag = pow(10, floor(log10(raw))), step = 0;
    static const double mult[] = {1, 2, 5, 10, 20};
    PlotAxis a = {0, 0, 0, 0};
    for (int i = 0; i < 5; i++) {
        step = mult[i] * mag;
        a.lo = floor(lo / step + 1e-9) * step;
        a.hi = ceil(hi / step - 1e-9) * step;
        a.n = (int)llround((a.hi - a.lo) / step) + 1;
        if (a.n <= max_ticks) break;
    }
    a.step = step;
    return a;
}

// Tick positions (in axis coordinates, log10 for a log axis) and their labels.
typedef struct {
    double lo, hi;
    int n;
    double at[MAX_TICKS];
    char label[MAX_TICKS][24];
} Ticks;

static void format_tick(char *buf, double v, double step) {
    if (fabs(v) < step * 1e-6) v = 0;
    snprintf(buf, 24, "%.6g", v);
}

static Ticks linear_ticks(double lo, double hi, int max_ticks) {
    PlotAxis a = plot_nice_axis(lo, hi, max_ticks);
    Ticks t = {a.lo, a.hi, 0, {0}, {{0}}};
    for (int i = 0; i < a.n && i < MAX_TICKS; i++, t.n++) {
        t.at[i] = a.lo + i * a.step;
        format_tick(t.label[i], t.at[i], a.step);
    }
    return t;
}

// Keeps the ticks from the last one <= lo to the first one >= hi, and makes them the axis ends.
static Ticks tighten(Ticks t, double lo, double hi) {
    int a = 0, b = t.n - 1;
    while (a + 1 < t.n && t.at[a + 1] <= lo + 1e-9) a++;
    while (b - 1 > a && t.at[b - 1] >= hi - 1e-9) b--;
    if (b <= a) return t;
    Ticks r = {t.at[a], t.at[b], b - a + 1, {0}, {{0}}};
    for (int i = a; i <= b; i++) {
        r.at[i - a] = t.at[i];
        memcpy(r.label[i - a], t.label[i], 24);
    }
    return r;
}

// lo, hi are log10 of the data range; ticks at 1, 2, 5 x 10^k (few decades) or at every k-th decade.
static Ticks log_ticks(double lo, double hi) {
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    Ticks t = {floor(lo + 1e-9), ceil(hi - 1e-9), 0, {0}, {{0}}};
    if (t.hi <= t.lo) t.hi = t.lo + 1;
    int decades = (int)(t.hi - t.lo), every = decades <= 3 ? 1 : (decades + 7) / 8;
    static const double mult[] = {1, 2, 5};
    for (int k = (int)t.lo; k <= (int)t.hi && t.n < MAX_TICKS; k += every)
        for (int m = 0; m < (decades <= 3 ? 3 : 1) && t.n < MAX_TICKS; m++) {
            double v = mult[m] * pow(10, k), at = log10(v);
            if (at > t.hi + 1e-9) break;
            t.at[t.n] = at;
            snprintf(t.label[t.n++], 24, "%g", v);
        }
    return decades <= 3 ? tighten(t, lo, hi) : t;
}

// ---- Canvas ------------------------------------------------------------------------------------

typedef struct { unsigned char *px; int w, h; } Canvas;
typedef struct { int x0, y0, x1, y1; } Rect; // pixel box, x1/y1 exclusive

static void blend(Canvas *c, int x, int y, const unsigned char rgb[3], float a) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || !(a > 0)) return;
    if (a > 1) a = 1;
    unsigned char *p = c->px + ((size_t)y * c->w + x) * 3;
    for (int k = 0; k < 3; k++) p[k] = (unsigned char)(p[k] + (rgb[k] - p[k]) * a + 0.5f);
}

static void fill_rect(Canvas *c, int x0, int y0, int x1, int y1, const unsigned char rgb[3]) {
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < c->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < c->w; x++) blend(c, x, y, rgb, 1);
}

static void stroke_rect(Canvas *c, Rect r, const unsigned char rgb[3]) {
    fill_rect(c, r.x0, r.y0, r.x1, r.y0 + 1, rgb);
    fill_rect(c, r.x0, r.y1 - 1, r.x1, r.y1, rgb);
    fill_rect(c, r.x0, r.y0, r.x0 + 1, r.y1, rgb);
    fill_rect(c, r.x1 - 1, r.y0, r.x1, r.y1, rgb);
}

// ---- Text (stb_easy_font quads, scaled by an integer factor) -----------------------------------

// stb_easy_font indexes its tables by (char - 32): keep printable ASCII only.
static char *ascii_copy(const char *s) {
    char *t = xstrdup(s);
    for (char *q = t; *q; q++)
        if (*q < 32 || *q > 126) *q = '?';
    return t;
}

static int text_width(const char *s, int scale) {
    char *t = ascii_copy(s);
    int w = stb_easy_font_width(t) * scale;
    free(t);
    return w;
}

// Draws s with its top-left corner at (x, y); rotated = 90 degrees counter-clockwise (reads upwards,
// (x, y) is then the bottom-left corner).
static void draw_text(Canvas *c, int x, int y, const char *s, int scale, const unsigned char rgb[3], int rotated) {
    char *t = ascii_copy(s);
    int cap = 1024 * ((int)strlen(t) + 1); // bytes; a glyph has at most ~10 quads of 64 bytes
    float *v = xmalloc((size_t)cap);
    int nq = stb_easy_font_print(0, 0, t, NULL, v, cap);
    for (int q = 0; q < nq; q++) {
        const float *a = v + q * 16, *b = a + 8; // vertices 0 and 2 (4 floats each) are opposite corners
        int qx0 = (int)lroundf(fminf(a[0], b[0])) * scale, qx1 = (int)lroundf(fmaxf(a[0], b[0])) * scale;
        int qy0 = (int)lroundf(fminf(a[1], b[1])) * scale, qy1 = (int)lroundf(fmaxf(a[1], b[1])) * scale;
        if (rotated) fill_rect(c, x + qy0, y - qx1, x + qy1, y - qx0, rgb);
        else fill_rect(c, x + qx0, y + qy0, x + qx1, y + qy1, rgb);
    }
    free(v);
    free(t);
}

// ---- Lines -------------------------------------------------------------------------------------

static float seg_distance(float px, float py, float ax, float ay, float bx, float by) {
    float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    float u = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
    u = u < 0 ? 0 : u > 1 ? 1 : u;
    float ex = px - (ax + u * dx), ey = py - (ay + u * dy);
    return sqrtf(ex * ex + ey * ey);
}

// Coverage of the segment (pixel coordinates) into cov (area-sized), keeping the maximum per pixel so
// that joints are not drawn twice.
static void cover_segment(float *cov, Rect r, float ax, float ay, float bx, float by, int aa) {
    float hw = (float)LINE_HALF_WIDTH, pad = hw + 1;
    int x0 = (int)floorf(fminf(ax, bx) - pad), x1 = (int)ceilf(fmaxf(ax, bx) + pad);
    int y0 = (int)floorf(fminf(ay, by) - pad), y1 = (int)ceilf(fmaxf(ay, by) + pad);
    if (x0 < r.x0) x0 = r.x0;
    if (y0 < r.y0) y0 = r.y0;
    if (x1 > r.x1) x1 = r.x1;
    if (y1 > r.y1) y1 = r.y1;
    int W = r.x1 - r.x0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float d = seg_distance(x + 0.5f, y + 0.5f, ax, ay, bx, by);
            float a = aa ? hw + 0.5f - d : (d <= hw ? 1.0f : 0.0f);
            float *p = &cov[(size_t)(y - r.y0) * W + (x - r.x0)];
            if (a > *p) *p = a > 1 ? 1 : a;
        }
}

typedef struct { Rect area; double xlo, xhi, ylo, yhi; int logy; } Frame;

// Axis coordinate of a data y (log10 on a log axis); NaN when it cannot be drawn.
static double y_coord(double y, int logy) {
    if (!isfinite(y)) return NAN;
    if (logy) return y > 0 ? log10(y) : NAN;
    return y;
}

static int to_pixel(const Frame *f, double x, double y, float *px, float *py) {
    double yc = y_coord(y, f->logy);
    if (!isfinite(x) || !isfinite(yc)) return 0;
    const Rect *r = &f->area;
    *px = (float)(r->x0 + (x - f->xlo) / (f->xhi - f->xlo) * (r->x1 - r->x0 - 1) + 0.5);
    *py = (float)(r->y1 - 1 - (yc - f->ylo) / (f->yhi - f->ylo) * (r->y1 - r->y0 - 1) + 0.5);
    return 1;
}

static void draw_series(Canvas *c, const Frame *f, const PlotSeries *s, int aa) {
    Rect r = f->area;
    size_t n = (size_t)(r.x1 - r.x0) * (r.y1 - r.y0);
    float *cov = xcalloc(n, sizeof(float));
    float ax = 0, ay = 0, bx, by;
    int have_prev = 0;
    for (int i = 0; i < s->n; i++) {
        int ok = to_pixel(f, s->x[i], s->y[i], &bx, &by);
        if (ok && have_prev) cover_segment(cov, r, ax, ay, bx, by, aa);
        if (ok && !have_prev && (i + 1 >= s->n || !to_pixel(f, s->x[i + 1], s->y[i + 1], &ax, &ay)))
            cover_segment(cov, r, bx, by, bx, by, aa); // an isolated point: a dot
        ax = bx, ay = by, have_prev = ok;
    }
    for (int y = r.y0; y < r.y1; y++)
        for (int x = r.x0; x < r.x1; x++) blend(c, x, y, s->rgb, cov[(size_t)(y - r.y0) * (r.x1 - r.x0) + (x - r.x0)]);
    free(cov);
}

// ---- Layout ------------------------------------------------------------------------------------

static void data_range(const Plot *p, double *xlo, double *xhi, double *ylo, double *yhi) {
    *xlo = *ylo = INFINITY;
    *xhi = *yhi = -INFINITY;
    for (int s = 0; s < p->nseries; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = y_coord(p->series[s].y[i], p->logy);
            if (!isfinite(x) || !isfinite(y)) continue;
            *xlo = fmin(*xlo, x), *xhi = fmax(*xhi, x);
            *ylo = fmin(*ylo, y), *yhi = fmax(*yhi, y);
        }
}

static void draw_x_axis(Canvas *c, const Frame *f, const Ticks *t, int fs) {
    const Rect *r = &f->area;
    for (int i = 0; i < t->n; i++) {
        int x = r->x0 + (int)lround((t->at[i] - f->xlo) / (f->xhi - f->xlo) * (r->x1 - r->x0 - 1));
        fill_rect(c, x, r->y0, x + 1, r->y1, GRID);
        fill_rect(c, x, r->y1, x + 1, r->y1 + 4 * fs, FRAME);
        draw_text(c, x - text_width(t->label[i], fs) / 2, r->y1 + 6 * fs, t->label[i], fs, BLACK, 0);
    }
}

static void draw_y_axis(Canvas *c, const Frame *f, const Ticks *t, int fs) {
    const Rect *r = &f->area;
    for (int i = 0; i < t->n; i++) {
        int y = r->y1 - 1 - (int)lround((t->at[i] - f->ylo) / (f->yhi - f->ylo) * (r->y1 - r->y0 - 1));
        fill_rect(c, r->x0, y, r->x1, y + 1, GRID);
        fill_rect(c, r->x0 - 4 * fs, y, r->x0, y + 1, FRAME);
        draw_text(c, r->x0 - 6 * fs - text_width(t->label[i], fs), y - 4 * fs, t->label[i], fs, BLACK, 0);
    }
}

// Data points of all series inside box.
static int points_in(const Frame *f, const Plot *p, Rect box) {
    int n = 0;
    float x, y;
    for (int s = 0; s < p->nseries; s++)
        for (int i = 0; i < p->series[s].n; i++)
            if (to_pixel(f, p->series[s].x[i], p->series[s].y[i], &x, &y))
                n += x >= box.x0 && x < box.x1 && y >= box.y0 && y < box.y1;
    return n;
}

// The legend box in the corner of the plot area (upper right, upper left, lower right, lower left)
// covering the fewest points.
static Rect legend_box(const Frame *f, const Plot *p, int bw, int bh, int fs) {
    Rect a = f->area, best = {0, 0, 0, 0};
    int fewest = -1, m = 6 * fs;
    for (int corner = 0; corner < 4; corner++) {
        int x0 = corner % 2 ? a.x0 + m : a.x1 - m - bw, y0 = corner / 2 ? a.y1 - m - bh : a.y0 + m;
        Rect r = {x0, y0, x0 + bw, y0 + bh};
        int n = points_in(f, p, r);
        if (fewest < 0 || n < fewest) fewest = n, best = r;
    }
    return best;
}

static void draw_legend(Canvas *c, const Plot *p, const Frame *f, int fs) {
    int wmax = 0, line = 12 * fs, swatch = 18 * fs;
    for (int s = 0; s < p->nseries; s++) {
        int w = text_width(p->series[s].name, fs);
        if (w > wmax) wmax = w;
    }
    Rect box = legend_box(f, p, wmax + swatch + 14 * fs, p->nseries * line + 6 * fs, fs);
    fill_rect(c, box.x0, box.y0, box.x1, box.y1, WHITE);
    stroke_rect(c, box, FRAME);
    for (int s = 0; s < p->nseries; s++) {
        int y = box.y0 + 4 * fs + s * line;
        fill_rect(c, box.x0 + 4 * fs, y + 4 * fs, box.x0 + 4 * fs + swatch, y + 6 * fs, p->series[s].rgb);
        draw_text(c, box.x0 + 8 * fs + swatch, y, p->series[s].name, fs, BLACK, 0);
    }
}

static int max_label_width(const Ticks *t, int fs) {
    int w = 0;
    for (int i = 0; i < t->n; i++) {
        int l = text_width(t->label[i], fs);
        if (l > w) w = l;
    }
    return w;
}

unsigned char *plot_render(const Plot *p, int width, int height) {
    if (width < 64 || height < 64) DDM_BUG("plot of %dx%d pixels", width, height);
    Canvas c = {xmalloc((size_t)width * height * 3), width, height};
    memset(c.px, 255, (size_t)width * height * 3);
    int fs = width >= 1600 && height >= 900 ? 2 : 1, ts = fs * 2;
    double xlo, xhi, ylo, yhi;
    data_range(p, &xlo, &xhi, &ylo, &yhi);
    Ticks yt = p->logy ? log_ticks(ylo, yhi) : linear_ticks(ylo, yhi, height / (40 * fs) + 2);
    int left = max_label_width(&yt, fs) + 12 * fs + (p->ylabel[0] ? 14 * fs : 0);
    Ticks xt = linear_ticks(xlo, xhi, (width - left) / (70 * fs) + 2);
    int right = xt.n ? text_width(xt.label[xt.n - 1], fs) / 2 + 6 * fs : 0;
    Rect area = {left, (p->title[0] ? 14 * ts : 0) + 10 * fs, width - (right > 20 * fs ? right : 20 * fs),
                 height - 22 * fs - (p->xlabel[0] ? 14 * fs : 0)};
    if (area.x1 - area.x0 < 16 || area.y1 - area.y0 < 16) area = (Rect){0, 0, width, height};
    Frame f = {area, xt.lo, xt.hi, yt.lo, yt.hi, p->logy};
    draw_x_axis(&c, &f, &xt, fs);
    draw_y_axis(&c, &f, &yt, fs);
    for (int s = 0; s < p->nseries; s++) draw_series(&c, &f, &p->series[s], p->antialias);
    stroke_rect(&c, area, FRAME);
    if (p->legend && p->nseries > 0) draw_legend(&c, p, &f, fs);
    if (p->title[0]) draw_text(&c, (width - text_width(p->title, ts)) / 2, 6 * fs, p->title, ts, BLACK, 0);
    if (p->xlabel[0])
        draw_text(&c, (area.x0 + area.x1 - text_width(p->xlabel, fs)) / 2, height - 14 * fs, p->xlabel, fs, BLACK, 0);
    if (p->ylabel[0])
        draw_text(&c, 3 * fs, (area.y0 + area.y1 + text_width(p->ylabel, fs)) / 2, p->ylabel, fs, BLACK, 1);
    return c.px;
}

static void write_to_file(void *ctx, void *data, int size) {
    fwrite(data, 1, (size_t)size, (FILE *)ctx);
}

void plot_write_png(const Plot *p, const char *path, int width, int height) {
    if (width < 160 || height < 120 || width > 16384 || height > 16384)
        ddm_fatal("%s: a plot of %dx%d pixels: width must be 160..16384 and height 120..16384", path, width, height);
    unsigned char *px = plot_render(p, width, height);
    AtomicFile af = atomic_open(path);
    int ok = stbi_write_png_to_func(write_to_file, af.f, width, height, 3, px, width * 3);
    free(px);
    if (!ok) {
        atomic_abort(&af);
        ddm_fatal("%s: PNG encoding failed", path);
    }
    atomic_commit(&af);
}
