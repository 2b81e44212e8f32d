package dev.berth.server;

import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.PayloadTooLargeException;
import dev.berth.runtime.InferenceService;
import io.helidon.http.HeaderName;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;
import java.io.IOException;
import java.io.InputStream;
import java.util.OptionalLong;

/**
 * What a REST route's handler gets: the request, its matched path parameters, its {@link Call}, and
 * the calls every handler needs (read the body within the limits, run inference under the call
 * policy, send JSON).
 */
final class RestExchange {
  static final String JSON = "application/json";

  private final ServerRequest request;
  private final ServerResponse response;
  private final Call call;
  private final Route.Match match;
  private final CallPolicy policy;
  private final long maxBodyBytes;

  RestExchange(
      ServerRequest request,
      ServerResponse response,
      Call call,
      Route.Match match,
      CallPolicy policy,
      long maxBodyBytes) {
    this.request = request;
    this.response = response;
    this.call = call;
    this.match = match;
    this.policy = policy;
    this.maxBodyBytes = maxBodyBytes;
  }

  /** The model named by the path, checked; null when the route has none. */
  String model() {
    return match.model();
  }

  /** The version named by the path, checked; null for the highest ready one. */
  String version() {
    return match.version();
  }

  Call call() {
    return call;
  }

  InferenceService service() {
    return policy.service();
  }

  ServerRequest request() {
    return request;
  }

  ServerResponse response() {
    return response;
  }

  /** A request header's value, or null. */
  String header(HeaderName name) {
    return request.headers().first(name).orElse(null);
  }

  /**
   * Runs one inference request under the call policy, waiting for the answer; a client that
   * disconnects meanwhile cancels it (which frees its slot at once).
   */
  InferenceResponse infer(InferenceRequest inference) {
    return ClientConnections.await(policy.infer(call, inference, null, null));
  }

  /** Sends a JSON answer; returns its status. */
  int send(int status, byte[] json) {
    return send(status, JSON, json);
  }

  int send(int status, String contentType, byte[] body) {
    return send(response, status, contentType, body);
  }

  /** Sends an answer on any response, routed or not; returns its status. */
  static int send(ServerResponse response, int status, String contentType, byte[] body) {
    response.status(status);
    response.header(HeaderNames.CONTENT_TYPE, contentType);
    response.send(body);
    return status;
  }

  /**
   * The whole request body, at most {@code --max-body-size} (413 beyond), arriving within {@code
   * --body-timeout} (408 beyond: a client that stalls or trickles its body has its read
   * interrupted, which closes the connection, so it holds this handler no longer).
   */
  byte[] body() throws IOException {
    OptionalLong length = request.headers().contentLength();
    if (length.isPresent() && length.getAsLong() > maxBodyBytes) {
      throw tooLarge(length.getAsLong());
    }
    ServerLimits limits = policy.limits();
    BodyDeadline deadline = BodyDeadline.start(limits.bodyTimeout());
    byte[] body;
    try {
      body = readBody();
    } catch (RuntimeException | IOException e) {
      if (deadline.end()) {
        throw new RequestTimeoutException(
            "the request body did not arrive within "
                + limits.bodyTimeout().toMillis()
                + " ms (--body-timeout); send it whole, without pauses",
            e);
      }
      throw e;
    }
    deadline.end(); // a deadline that passed as the last byte came changes nothing
    if (body.length > maxBodyBytes) {
      throw tooLarge(-1);
    }
    return body;
  }

  private byte[] readBody() throws IOException {
    try (InputStream in = request.content().inputStream()) {
      return in.readNBytes((int) Math.min(maxBodyBytes + 1, Integer.MAX_VALUE - 8));
    } catch (NumberFormatException e) {
      // the web server parses chunk sizes while the body is read
      throw new InvalidInputException(
          "the request body's chunked transfer encoding is malformed (a chunk size is not"
              + " hexadecimal)",
          e);
    } catch (io.helidon.common.buffers.DataReader.InsufficientDataAvailableException e) {
      throw new InvalidInputException(
          "the request body ended (the client closed the connection) before its Content-Length", e);
    }
  }

  private PayloadTooLargeException tooLarge(long size) {
    return new PayloadTooLargeException(
        "request body "
            + (size >= 0 ? "of " + size + " bytes " : "")
            + "is larger than the limit of "
            + maxBodyBytes
            + " bytes; send fewer rows per request or raise --max-body-size");
  }
}
