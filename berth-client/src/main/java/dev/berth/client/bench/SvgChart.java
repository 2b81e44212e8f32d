package dev.berth.client.bench;

import java.util.List;
import java.util.Locale;

/** Small self-contained SVG charts for the HTML reports: no scripts, no external files. */
public final class SvgChart {
  private static final int WIDTH = 560;
  private static final int HEIGHT = 340;
  private static final int LEFT = 64;
  private static final int RIGHT = 20;
  private static final int TOP = 36;
  private static final int BOTTOM = 52;

  /** One point of a line, with the label drawn beside it (may be empty). */
  public record Point(double x, double y, String label) {}

  /**
   * One line of a chart, or with {@code connected} false its points alone.
   *
   * @param name its name in the legend
   * @param color its colour
   * @param points its points
   * @param connected whether a line joins the points
   */
  public record Series(String name, String color, List<Point> points, boolean connected) {
    /** A line through the points. */
    public Series(String name, String color, List<Point> points) {
      this(name, color, points, true);
    }
  }

  private SvgChart() {}

  /**
   * A line chart with linear axes from 0; NaN points are left out. The last series' points carry
   * their labels.
   */
  public static String lines(String title, String xLabel, String yLabel, List<Series> series) {
    double maxX = 0;
    double maxY = 0;
    for (Series s : series) {
      for (Point p : s.points()) {
        if (finite(p)) {
          maxX = Math.max(maxX, p.x());
          maxY = Math.max(maxY, p.y());
        }
      }
    }
    Axis x = Axis.of(maxX);
    Axis y = Axis.of(maxY);
    StringBuilder svg = frame(title, xLabel, yLabel, x, y);
    int legendX = LEFT + 8;
    for (Series s : series) {
      StringBuilder path = new StringBuilder();
      StringBuilder marks = new StringBuilder();
      for (Point p : s.points()) {
        if (!finite(p)) {
          continue;
        }
        double px = px(p.x(), x);
        double py = py(p.y(), y);
        path.append(path.isEmpty() ? "M" : " L").append(f(px)).append(' ').append(f(py));
        marks.append(
            String.format(
                Locale.ROOT,
                "<circle cx=\"%s\" cy=\"%s\" r=\"3.5\" fill=\"%s\"><title>%s: %s, %s</title></circle>",
                f(px),
                f(py),
                s.color(),
                esc(s.name() + (p.label().isEmpty() ? "" : " " + p.label())),
                number(p.x()),
                number(p.y())));
        if (!p.label().isEmpty() && s == series.get(series.size() - 1)) {
          marks.append(
              String.format(
                  Locale.ROOT,
                  "<text x=\"%s\" y=\"%s\" font-size=\"10\" fill=\"#444\" text-anchor=\"middle\">%s</text>",
                  f(px),
                  f(py - 8),
                  esc(p.label())));
        }
      }
      if (!path.isEmpty() && s.connected()) {
        svg.append("<path d=\"")
            .append(path)
            .append("\" fill=\"none\" stroke=\"")
            .append(s.color())
            .append("\" stroke-width=\"2\"/>");
      }
      svg.append(marks);
      svg.append(
          String.format(
              Locale.ROOT,
              "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" fill=\"%s\"/>"
                  + "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>",
              legendX,
              TOP + 6,
              s.color(),
              legendX + 16,
              TOP + 11,
              esc(s.name())));
      legendX += 26 + 7 * s.name().length();
    }
    return svg.append("</svg>").toString();
  }

  /** A bar chart, one bar per category; NaN values are left out. */
  static String bars(
      String title, String xLabel, String yLabel, List<String> categories, List<Double> values) {
    double maxY = 0;
    for (double v : values) {
      if (Double.isFinite(v)) {
        maxY = Math.max(maxY, v);
      }
    }
    Axis y = Axis.of(maxY);
    StringBuilder svg = frame(title, xLabel, yLabel, null, y);
    int n = categories.size();
    double slot = (WIDTH - LEFT - RIGHT) / (double) Math.max(1, n);
    for (int i = 0; i < n; i++) {
      double cx = LEFT + slot * (i + 0.5);
      double v = values.get(i);
      svg.append(
          String.format(
              Locale.ROOT,
              "<text x=\"%s\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>",
              f(cx),
              HEIGHT - BOTTOM + 16,
              esc(categories.get(i))));
      if (!Double.isFinite(v)) {
        continue;
      }
      double top = py(v, y);
      double w = Math.min(60, slot * 0.6);
      svg.append(
          String.format(
              Locale.ROOT,
              "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"#3b6ea8\"><title>%s: %s</title></rect>"
                  + "<text x=\"%s\" y=\"%s\" font-size=\"10\" text-anchor=\"middle\">%s</text>",
              f(cx - w / 2),
              f(top),
              f(w),
              f(HEIGHT - BOTTOM - top),
              esc(categories.get(i)),
              number(v),
              f(cx),
              f(top - 4),
              number(v)));
    }
    return svg.append("</svg>").toString();
  }

  /** Axis range 0..max rounded up to a tick, with 4-6 ticks. */
  private record Axis(double max, double step) {
    static Axis of(double dataMax) {
      if (!(dataMax > 0)) {
        return new Axis(1, 0.2);
      }
      double raw = dataMax / 5;
      double mag = Math.pow(10, Math.floor(Math.log10(raw)));
      double norm = raw / mag;
      double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
      return new Axis(Math.ceil(dataMax / step - 1e-9) * step, step);
    }
  }

  private static StringBuilder frame(String title, String xLabel, String yLabel, Axis x, Axis y) {
    StringBuilder svg = new StringBuilder(4096);
    svg.append(
        String.format(
            Locale.ROOT,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\""
                + " font-family=\"sans-serif\" role=\"img\">",
            WIDTH,
            HEIGHT,
            WIDTH,
            HEIGHT));
    svg.append("<title>").append(esc(title)).append("</title>");
    svg.append(
        String.format(
            Locale.ROOT,
            "<text x=\"%d\" y=\"18\" font-size=\"14\" font-weight=\"bold\">%s</text>",
            LEFT,
            esc(title)));
    int plotBottom = HEIGHT - BOTTOM;
    int plotRight = WIDTH - RIGHT;
    for (double v = 0; v <= y.max() + y.step() / 2; v += y.step()) {
      double py = py(v, y);
      svg.append(
          String.format(
              Locale.ROOT,
              "<line x1=\"%d\" y1=\"%s\" x2=\"%d\" y2=\"%s\" stroke=\"#ddd\"/>"
                  + "<text x=\"%d\" y=\"%s\" font-size=\"11\" text-anchor=\"end\">%s</text>",
              LEFT,
              f(py),
              plotRight,
              f(py),
              LEFT - 6,
              f(py + 4),
              number(v)));
    }
    if (x != null) {
      for (double v = 0; v <= x.max() + x.step() / 2; v += x.step()) {
        double px = px(v, x);
        svg.append(
            String.format(
                Locale.ROOT,
                "<line x1=\"%s\" y1=\"%d\" x2=\"%s\" y2=\"%d\" stroke=\"#eee\"/>"
                    + "<text x=\"%s\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>",
                f(px),
                TOP,
                f(px),
                plotBottom,
                f(px),
                plotBottom + 16,
                number(v)));
      }
    }
    svg.append(
        String.format(
            Locale.ROOT,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
                + "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>",
            LEFT,
            plotBottom,
            plotRight,
            plotBottom,
            LEFT,
            TOP,
            LEFT,
            plotBottom));
    svg.append(
        String.format(
            Locale.ROOT,
            "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>"
                + "<text x=\"14\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\""
                + " transform=\"rotate(-90 14 %d)\">%s</text>",
            (LEFT + plotRight) / 2,
            HEIGHT - 12,
            esc(xLabel),
            (TOP + plotBottom) / 2,
            (TOP + plotBottom) / 2,
            esc(yLabel)));
    return svg;
  }

  private static double px(double v, Axis x) {
    return LEFT + v / x.max() * (WIDTH - LEFT - RIGHT);
  }

  private static double py(double v, Axis y) {
    return HEIGHT - BOTTOM - v / y.max() * (HEIGHT - BOTTOM - TOP);
  }

  private static boolean finite(Point p) {
    return Double.isFinite(p.x()) && Double.isFinite(p.y());
  }

  private static String f(double v) {
    return String.format(Locale.ROOT, "%.1f", v);
  }

  /** A tick or value label: no more digits than it needs. */
  static String number(double v) {
    if (v == Math.rint(v) && Math.abs(v) < 1e15) {
      return String.format(Locale.ROOT, "%,d", (long) v);
    }
    double a = Math.abs(v);
    return String.format(Locale.ROOT, a >= 100 ? "%,.0f" : a >= 10 ? "%.1f" : "%.2f", v);
  }

  /** Escapes text for HTML and SVG. */
  public static String esc(String s) {
    return s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\"", "&quot;");
  }
}
