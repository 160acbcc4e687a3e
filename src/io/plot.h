// A small raster line-chart renderer: a title, axis labels, named series (each its own colour),
// optional log-scale y, automatic "nice" axis ranges with 1/2/5 x 10^k ticks, labels and legend drawn
// with stb_easy_font, white background. Non-finite points (and y <= 0 on a log axis) leave a gap.
#pragma once

typedef struct {
    char *name;
    double *x, *y;
    int n;
    unsigned char rgb[3];
} PlotSeries;

typedef struct {
    char *title, *xlabel, *ylabel;
    int logy;        // log10 y axis
    int antialias;   // 1 = anti-aliased lines (default)
    int legend;      // 1 = legend in the corner of the plot area with the fewest points (default)
    PlotSeries *series;
    int nseries;
} Plot;

// An axis range [lo, hi] with ticks lo, lo + step, ..., hi (n of them); step is 1, 2 or 5 x 10^k.
typedef struct { double lo, hi, step; int n; } PlotAxis;

// The smallest nice axis covering [lo, hi] with at most max_ticks ticks (lo == hi is widened).
PlotAxis plot_nice_axis(double lo, double hi, int max_ticks);

void plot_init(Plot *p, const char *title, const char *xlabel, const char *ylabel);
// Copies name, x and y; the colour is the next one of a 10-colour palette.
void plot_add_series(Plot *p, const char *name, const double *x, const double *y, int n);
void plot_free(Plot *p);

// Renders into a new RGB buffer (width * height * 3 bytes, rows top to bottom); the caller frees it.
unsigned char *plot_render(const Plot *p, int width, int height);
// Renders and writes a PNG atomically (temp file, then rename); fatal on bad sizes or I/O errors.
void plot_write_png(const Plot *p, const char *path, int width, int height);
