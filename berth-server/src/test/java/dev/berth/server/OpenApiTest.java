package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The OpenAPI document holds every declared REST route, and nothing else, as the route says. */
class OpenApiTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Set<String> METHODS =
      Set.of("get", "put", "post", "delete", "options", "head", "patch", "trace");
  private static final Pattern PARAMETER = Pattern.compile("\\{([a-z]+)\\}");

  private final JsonNode doc = read();
  private final List<Route> routes = BerthServer.routes(null, "test").routes();

  private static JsonNode read() {
    try {
      return JSON.readTree(OpenApi.document());
    } catch (java.io.IOException e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void isAnOpenApi31Document() {
    assertEquals("3.1.0", doc.path("openapi").asText());
    assertTrue(doc.path("info").path("title").isTextual());
    assertTrue(doc.path("info").path("version").isTextual());
  }

  @Test
  void everyRouteIsDocumentedAsDeclared() {
    for (Route route : routes) {
      String where = route.method().text() + " " + route.path();
      JsonNode op =
          doc.path("paths").path(route.path()).path(route.method().text().toLowerCase(Locale.ROOT));
      assertTrue(op.isObject(), where + " is not in openapi.json");
      assertEquals(route.summary(), op.path("summary").asText(), where + ": summary");
      assertEquals(security(route.role()), op.path("security"), where + ": security");
      Set<String> declared = new TreeSet<>();
      Matcher m = PARAMETER.matcher(route.path());
      while (m.find()) {
        declared.add(m.group(1));
      }
      Set<String> documented = new TreeSet<>();
      for (JsonNode p : op.path("parameters")) {
        if (p.path("in").asText().equals("path")) {
          assertTrue(p.path("required").asBoolean(), where + ": path parameters are required");
          documented.add(p.path("name").asText());
        }
      }
      assertEquals(declared, documented, where + ": path parameters");
      assertTrue(op.path("responses").has("200"), where + ": documents its answer");
    }
  }

  @Test
  void documentsNothingThatIsNotARoute() {
    Set<String> declared = new HashSet<>();
    for (Route route : routes) {
      declared.add(route.method().text().toLowerCase(Locale.ROOT) + " " + route.path());
    }
    List<String> extra = new ArrayList<>();
    Set<String> operationIds = new HashSet<>();
    for (Operation op : operations()) {
      if (!declared.contains(op.method() + " " + op.path())) {
        extra.add(op.method() + " " + op.path());
      }
      assertTrue(
          operationIds.add(op.node().path("operationId").asText()),
          "operationId " + op.node().path("operationId") + " twice");
    }
    assertEquals(List.of(), extra, "documented but not routed");
  }

  @Test
  void everyReferenceResolves() {
    List<String> refs = new ArrayList<>();
    collect(doc, refs);
    assertTrue(refs.size() > 20, "the document references its schemas");
    for (String ref : refs) {
      assertTrue(ref.startsWith("#/"), ref);
      assertTrue(!doc.at(ref.substring(1)).isMissingNode(), ref + " resolves to nothing");
    }
  }

  /** The objects OpenAPI 3.1 defines take only their own fields (as a linter checks them). */
  @Test
  void mediaTypesAndResponsesHoldOnlyWhatOpenApiAllows() {
    Set<String> mediaType = Set.of("schema", "example", "examples", "encoding");
    for (Operation op : operations()) {
      String where = op.method() + " " + op.path();
      List<JsonNode> contents = new ArrayList<>();
      contents.add(op.node().path("requestBody").path("content"));
      op.node()
          .path("responses")
          .properties()
          .forEach(
              r -> {
                assertTrue(
                    r.getValue().path("description").isTextual(),
                    where + " " + r.getKey() + ": a response needs a description");
                contents.add(r.getValue().path("content"));
              });
      for (JsonNode content : contents) {
        content
            .properties()
            .forEach(
                m ->
                    m.getValue()
                        .fieldNames()
                        .forEachRemaining(
                            f ->
                                assertTrue(
                                    mediaType.contains(f),
                                    where
                                        + " "
                                        + m.getKey()
                                        + ": '"
                                        + f
                                        + "' is not a field of a"
                                        + " media type")));
      }
    }
  }

  /** One operation of the document: a method of a path. */
  private record Operation(String method, String path, JsonNode node) {}

  private List<Operation> operations() {
    List<Operation> out = new ArrayList<>();
    doc.path("paths")
        .properties()
        .forEach(
            path ->
                path.getValue()
                    .properties()
                    .forEach(
                        op -> {
                          if (METHODS.contains(op.getKey())) {
                            out.add(new Operation(op.getKey(), path.getKey(), op.getValue()));
                          }
                        }));
    return out;
  }

  @Test
  void docsHoldTheSameDocument() throws Exception {
    Path docs = Path.of("..", "docs", "openapi.json");
    assertArrayEquals(
        OpenApi.document(),
        Files.readAllBytes(docs),
        "docs/openapi.json differs from berth-server's " + OpenApi.RESOURCE + "; copy it there");
  }

  private static JsonNode security(Access.Role role) {
    String json =
        role == null
            ? "[]" // open: probes, scrapers, readers of the API
            : role == Access.Role.INFER
                ? "[{}, {\"bearer\": []}, {\"basic\": []}]" // a key only when keys are on
                : "[{\"bearer\": []}, {\"basic\": []}]";
    try {
      return JSON.readTree(json);
    } catch (java.io.IOException e) {
      throw new AssertionError(e);
    }
  }

  private static void collect(JsonNode node, List<String> refs) {
    if (node.isObject()) {
      node.properties()
          .forEach(
              e -> {
                if (e.getKey().equals("$ref")) {
                  refs.add(e.getValue().asText());
                } else {
                  collect(e.getValue(), refs);
                }
              });
    } else if (node.isArray()) {
      node.forEach(n -> collect(n, refs));
    }
  }
}
