package dev.berth.kube.testing;

import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import io.fabric8.mockwebserver.dsl.HttpMethod;
import io.fabric8.mockwebserver.http.Buffer;
import io.fabric8.mockwebserver.http.Headers;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * fabric8's CRUD mock API server, taught server-side apply ({@code PATCH} with {@code
 * application/apply-patch+yaml}), which it answers 415 otherwise. As the API server does for one
 * field manager: an apply creates an absent object, merges into a present one (maps merge, lists
 * and scalars replace), and writes nothing, keeping the resource version, when the merge changes
 * nothing.
 */
public class ApplyingCrudDispatcher extends KubernetesCrudDispatcher {
  private static final KubernetesSerialization JSON = new KubernetesSerialization();

  /** How many applies wrote something. */
  private int writes;

  private static final java.util.regex.Pattern LOG =
      java.util.regex.Pattern.compile(
          "/api/v1/namespaces/[^/]+/pods/([^/?]+)/log\\?(?:.*&)?container=([^&]+).*");

  // the logs a pod's containers wrote, which the mock does not keep: by "pod/container"
  private final Map<String, String> logs = new java.util.concurrent.ConcurrentHashMap<>();

  /** What {@code GET .../pods/POD/log?container=C} answers (the mock answers 404 otherwise). */
  public void log(String pod, String container, String text) {
    logs.put(pod + "/" + container, text);
  }

  @Override
  public MockResponse handleGet(String path) {
    java.util.regex.Matcher m = LOG.matcher(path);
    if (m.matches()) {
      String text = logs.get(m.group(1) + "/" + m.group(2));
      return text == null
          ? new MockResponse().setResponseCode(404)
          : new MockResponse().setResponseCode(200).setBody(text);
    }
    return super.handleGet(path);
  }

  public synchronized int writes() {
    return writes;
  }

  @Override
  public MockResponse handlePatch(RecordedRequest request) {
    String type = request.getHeader("Content-Type");
    if (type == null || !type.startsWith("application/apply-patch")) {
      return super.handlePatch(request);
    }
    String path = request.getPath();
    String bare = path.contains("?") ? path.substring(0, path.indexOf('?')) : path;
    @SuppressWarnings("unchecked")
    Map<String, Object> applied = JSON.unmarshal(request.getUtf8Body(), Map.class);
    MockResponse current = handleGet(bare);
    if (current.code() == 404) {
      synchronized (this) {
        writes++;
      }
      String collection = bare.substring(0, bare.lastIndexOf('/'));
      return handleCreate(request(HttpMethod.POST, collection, "application/json", applied));
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> live = JSON.unmarshal(current.getBody().readUtf8(), Map.class);
    Map<String, Object> merged = merge(live, applied);
    if (merged.equals(live)) {
      return new MockResponse().setResponseCode(200).setBody(JSON.asJson(live));
    }
    synchronized (this) {
      writes++;
    }
    return handleUpdate(request(HttpMethod.PUT, bare, "application/json", merged));
  }

  private static RecordedRequest request(
      HttpMethod method, String path, String contentType, Map<String, Object> body) {
    return new RecordedRequest(
        "HTTP/1.1",
        method,
        path,
        new Headers.Builder().add("Content-Type", contentType).build(),
        new Buffer().writeUtf8(JSON.asJson(body)));
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> merge(Map<String, Object> live, Map<String, Object> applied) {
    Map<String, Object> out = new LinkedHashMap<>(live);
    applied.forEach(
        (k, v) -> {
          Object old = out.get(k);
          if (v instanceof Map<?, ?> m && old instanceof Map<?, ?> o) {
            out.put(k, merge((Map<String, Object>) o, (Map<String, Object>) m));
          } else {
            out.put(k, v);
          }
        });
    return out;
  }
}
