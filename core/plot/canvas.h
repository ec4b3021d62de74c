// A thin owner of a cairo image surface with the few drawing calls the job
// pictures need (text, rectangles, lines, filled circles), in pixels.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

typedef struct _cairo cairo_t;
typedef struct _cairo_surface cairo_surface_t;

namespace candies::plot {

struct Rgb {
  double r = 0, g = 0, b = 0;
};
Rgb HexColor(const char* hex);  // "#1f77b4"

class Canvas {
 public:
  Canvas(int width, int height);  // white background
  ~Canvas();
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;

  int width() const { return width_; }
  int height() const { return height_; }
  cairo_t* cr() { return cr_; }

  void Text(double x, double y, const std::string& s, double size, bool bold = false,
            Rgb color = {}, double align = 0.0);  // align: 0 left, 0.5 centre, 1 right
  double TextWidth(const std::string& s, double size, bool bold = false);
  void Rect(double x, double y, double w, double h, Rgb fill);
  void Frame(double x, double y, double w, double h, Rgb stroke, double line_width = 1.0);
  void Line(double x0, double y0, double x1, double y1, Rgb stroke, double line_width = 1.0);
  void Dot(double x, double y, double radius, Rgb fill);

  absl::Status WritePng(const std::string& path);

 private:
  int width_, height_;
  cairo_surface_t* surface_;
  cairo_t* cr_;
};

}  // namespace candies::plot
