package dev.berth.server;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The REST API's OpenAPI 3.1 document ({@code GET /openapi.json}; a copy is docs/openapi.json). A
 * test holds it to the declared routes: every route is in it, and nothing else.
 */
final class OpenApi {
  static final String RESOURCE = "openapi.json";

  private static final byte[] DOCUMENT = load();

  private OpenApi() {}

  static byte[] document() {
    return DOCUMENT;
  }

  private static byte[] load() {
    try (InputStream in = OpenApi.class.getResourceAsStream(RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException(RESOURCE + " is missing from berth-server's resources");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
