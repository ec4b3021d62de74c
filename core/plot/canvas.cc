#include "core/plot/canvas.h"

#include <cairo.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace candies::plot {

Rgb HexColor(const char* hex) {
  unsigned v = static_cast<unsigned>(std::strtoul(hex + 1, nullptr, 16));
  return {((v >> 16) & 0xff) / 255.0, ((v >> 8) & 0xff) / 255.0, (v & 0xff) / 255.0};
}

Canvas::Canvas(int width, int height)
    : width_(width),
      height_(height),
      surface_(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height)),
      cr_(cairo_create(surface_)) {
  cairo_set_source_rgb(cr_, 1, 1, 1);
  cairo_paint(cr_);
}

Canvas::~Canvas() {
  cairo_destroy(cr_);
  cairo_surface_destroy(surface_);
}

void Canvas::Text(double x, double y, const std::string& s, double size, bool bold, Rgb color,
                  double align) {
  cairo_select_font_face(cr_, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr_, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr_, s.c_str(), &ext);
  cairo_set_source_rgb(cr_, color.r, color.g, color.b);
  cairo_move_to(cr_, x - align * ext.x_advance, y);
  cairo_show_text(cr_, s.c_str());
}

double Canvas::TextWidth(const std::string& s, double size, bool bold) {
  cairo_select_font_face(cr_, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr_, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr_, s.c_str(), &ext);
  return ext.x_advance;
}

void Canvas::Rect(double x, double y, double w, double h, Rgb fill) {
  cairo_set_source_rgb(cr_, fill.r, fill.g, fill.b);
  cairo_rectangle(cr_, x, y, w, h);
  cairo_fill(cr_);
}

void Canvas::Frame(double x, double y, double w, double h, Rgb stroke, double line_width) {
  cairo_set_source_rgb(cr_, stroke.r, stroke.g, stroke.b);
  cairo_set_line_width(cr_, line_width);
  cairo_rectangle(cr_, x, y, w, h);
  cairo_stroke(cr_);
}

void Canvas::Line(double x0, double y0, double x1, double y1, Rgb stroke, double line_width) {
  cairo_set_source_rgb(cr_, stroke.r, stroke.g, stroke.b);
  cairo_set_line_width(cr_, line_width);
  cairo_move_to(cr_, x0, y0);
  cairo_line_to(cr_, x1, y1);
  cairo_stroke(cr_);
}

void Canvas::Dot(double x, double y, double radius, Rgb fill) {
  cairo_set_source_rgb(cr_, fill.r, fill.g, fill.b);
  cairo_new_sub_path(cr_);
  cairo_arc(cr_, x, y, radius, 0, 2 * M_PI);
  cairo_fill(cr_);
}

absl::Status Canvas::WritePng(const std::string& path) {
  cairo_surface_flush(surface_);
  // Written beside, then renamed, so a reader never sees half a picture.
  const std::string tmp = path + ".tmp";
  cairo_status_t st = cairo_surface_write_to_png(surface_, tmp.c_str());
  if (st != CAIRO_STATUS_SUCCESS)
    return absl::InternalError(absl::StrCat(path, ": cannot write PNG: ",
                                            cairo_status_to_string(st)));
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return absl::InternalError(absl::StrCat(path, ": cannot rename the written PNG into place"));
  return absl::OkStatus();
}

}  // namespace candies::plot
