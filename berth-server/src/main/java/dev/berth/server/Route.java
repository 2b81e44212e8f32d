package dev.berth.server;

import io.helidon.http.Method;
import java.io.IOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * One REST endpoint, declared by the adapter that answers it: method, path template, who may call
 * it, its metrics label when it runs inference, the body its errors take, whether a browser opens
 * it, and its handler. A template's segments are literals, parameters ({@code {model}}, {@code
 * {version}}) or a parameter with a literal suffix ({@code {model}:predict}); model names and
 * versions are checked as they are matched.
 *
 * @param role the credential it needs; null for open endpoints (health, metrics)
 * @param protocol the {@code protocol} label of its request metrics when it runs inference, else
 *     null
 * @param summary one line for the API's documentation
 * @param browser whether it is a page a browser opens (or what such a page loads): a call without a
 *     credential is asked for HTTP Basic credentials, so that the browser asks its user
 */
record Route(
    Method method,
    String path,
    Access.Role role,
    String protocol,
    String summary,
    ErrorBody errors,
    boolean browser,
    Handler handler) {

  /** Answers one exchange; returns the status it sent. */
  @FunctionalInterface
  interface Handler {
    int handle(RestExchange exchange) throws IOException;
  }

  /** Writes the body of an error answer in an API's own shape. */
  @FunctionalInterface
  interface ErrorBody {
    byte[] write(CallPolicy.Failure failure);
  }

  /** The Open Inference Protocol's error body, {@code {"error": "..."}}. */
  static final ErrorBody JSON_ERROR = f -> HttpErrors.errorBody(f.http().message());

  static Route get(String path, Access.Role role, String summary, Handler handler) {
    return new Route(Method.GET, path, role, null, summary, JSON_ERROR, false, handler);
  }

  static Route post(String path, Access.Role role, String summary, Handler handler) {
    return new Route(Method.POST, path, role, null, summary, JSON_ERROR, false, handler);
  }

  /** This route, running inference labelled {@code protocol} in the request metrics. */
  Route inference(String protocol) {
    return new Route(method, path, role, protocol, summary, errors, browser, handler);
  }

  /** This route, with errors written by {@code body}. */
  Route errors(ErrorBody body) {
    return new Route(method, path, role, protocol, summary, body, browser, handler);
  }

  /** This route, as one a browser opens ({@link #browser()}). */
  Route forBrowsers() {
    return new Route(method, path, role, protocol, summary, errors, true, handler);
  }

  /** A route matched to a request, with its path parameters. */
  record Match(Route route, String model, String version) {}

  /** The routes of the REST port, matched in the order declared. */
  static final class Table {
    private final List<Route> routes;
    private final List<String[]> templates = new ArrayList<>();

    Table(List<Route> routes) {
      this.routes = List.copyOf(routes);
      for (Route r : this.routes) {
        templates.add(split(r.path()));
      }
    }

    List<Route> routes() {
      return routes;
    }

    /**
     * Whether a call to {@code rawPath} is worth a trace: not the open endpoints that probes,
     * scrapers and tools poll (health, {@code /metrics}, the API document), nor the status page and
     * what it polls. Calls that match no route are traced, as their failures are worth seeing.
     */
    boolean traced(Method method, String rawPath) {
      List<String> segments = segments(rawPath);
      for (int i = 0; i < routes.size(); i++) {
        Route route = routes.get(i);
        if (route.method().equals(method) && fits(templates.get(i), segments)) {
          return route.role() != null && !route.browser();
        }
      }
      return true;
    }

    /**
     * The route for a request.
     *
     * @throws NoSuchEndpointException no route has this path
     * @throws MethodNotAllowedException routes have this path, for other methods
     */
    Match match(Method method, String rawPath) {
      List<String> segments = segments(rawPath);
      Set<Method> allowed = null;
      for (int i = 0; i < routes.size(); i++) {
        String[] template = templates.get(i);
        if (!fits(template, segments)) {
          continue;
        }
        Route route = routes.get(i);
        if (!route.method().equals(method)) {
          allowed = allowed == null ? new LinkedHashSet<>() : allowed;
          allowed.add(route.method());
          continue;
        }
        String model = null;
        String version = null;
        for (int s = 0; s < template.length; s++) {
          String t = template[s];
          if (t.startsWith("{")) {
            int close = t.indexOf('}');
            String value = segments.get(s);
            value = value.substring(0, value.length() - (t.length() - close - 1));
            switch (t.substring(1, close)) {
              case "model" -> model = CallPolicy.modelName(value);
              case "version" -> version = CallPolicy.versionName(value);
              default -> throw new IllegalStateException(t);
            }
          }
        }
        return new Match(route, model, version);
      }
      if (allowed != null) {
        throw new MethodNotAllowedException(method, allowed.toArray(Method[]::new));
      }
      String last = segments.isEmpty() ? "" : segments.get(segments.size() - 1);
      if (segments.size() >= 3 && segments.get(1).equals("models")) {
        if (segments.get(0).equals("v1") && last.contains(":")) {
          throw new dev.berth.api.InvalidInputException(
              "'"
                  + last.substring(last.indexOf(':'))
                  + "' is not supported; Berth answers :predict");
        }
        CallPolicy.modelName(segments.get(2)); // a bad name (such as "..") is named as such
      }
      throw new NoSuchEndpointException(
          "no such endpoint: "
              + method.text()
              + " "
              + rawPath
              + "; see /v2 (Open Inference Protocol), /v1/models/{m}:predict (TF Serving),"
              + " /metrics, /openapi.json and / (the status page)");
    }

    /**
     * The credential a path that no route answers needs before it is told so: that of the routes
     * sharing most of its leading segments (a path under {@code /v2/repository} is the repository
     * API's, and its callers are checked and audited as that API's are); null when none share any.
     */
    Access.Role roleOf(String rawPath) {
      List<String> segments;
      try {
        segments = segments(rawPath);
      } catch (RuntimeException e) {
        return null;
      }
      Access.Role role = null;
      int best = 0;
      for (int i = 0; i < routes.size(); i++) {
        String[] template = templates.get(i);
        int shared = 0;
        while (shared < template.length
            && shared < segments.size()
            && !template[shared].startsWith("{")
            && template[shared].equals(segments.get(shared))) {
          shared++;
        }
        if (shared > best) {
          best = shared;
          role = routes.get(i).role();
        }
      }
      return role;
    }

    private static boolean fits(String[] template, List<String> segments) {
      if (template.length != segments.size()) {
        return false;
      }
      for (int s = 0; s < template.length; s++) {
        String t = template[s];
        String value = segments.get(s);
        if (t.startsWith("{")) {
          String suffix = t.substring(t.indexOf('}') + 1);
          if (suffix.isEmpty() ? value.indexOf(':') >= 0 : !value.endsWith(suffix)) {
            return false; // a suffix (":predict") belongs to the template that declares it
          }
          if (value.length() == suffix.length()) {
            return false;
          }
        } else if (!t.equals(value)) {
          return false;
        }
      }
      return true;
    }

    private static String[] split(String path) {
      return path.equals("/") ? new String[0] : path.substring(1).split("/");
    }

    /** The path's segments, %-decoded; empty ones (doubled or trailing slashes) dropped. */
    static List<String> segments(String rawPath) {
      List<String> out = new ArrayList<>();
      for (String s : rawPath.split("/")) {
        if (!s.isEmpty()) {
          try {
            out.add(URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8));
          } catch (IllegalArgumentException e) {
            throw new dev.berth.api.InvalidInputException(
                "the path has a malformed %-escape: " + rawPath);
          }
        }
      }
      return out;
    }
  }
}
