package dev.berth.server;

import dev.berth.runtime.Generation;
import dev.berth.runtime.RequestTrace;
import io.grpc.Status;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanBuilder;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Context;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The server span of one call, and the spans the runtime's reports draw under it, each recorded
 * once its step is over with the step's own start and end: {@code berth.queue}, {@code
 * berth.preprocess}, {@code berth.engine} (its part in an engine call, linked to the call's {@code
 * berth.batch} span: one per engine call, a child of its first traced request's span and linked to
 * every traced request it ran), {@code berth.postprocess}, and for a language model {@code chat
 * MODEL} or {@code text_completion MODEL} with OpenTelemetry's GenAI attributes.
 *
 * <p>Its moments are {@link System#nanoTime()} readings, placed on the wall clock against one pair
 * of readings of both clocks taken as the call's server span starts.
 */
final class RequestSpan implements RequestTrace {
  private static final AttributeKey<List<String>> FINISH_REASONS =
      AttributeKey.stringArrayKey("gen_ai.response.finish_reasons");

  private final Tracing tracing;
  private final Span span;
  private final Context context;
  // the wall clock (nanoseconds since the epoch) and nanoTime, read together as the span started
  private final long epochNanos;
  private final long anchorNanos;

  RequestSpan(Tracing tracing, Span span, Context context, long epochNanos, long anchorNanos) {
    this.tracing = tracing;
    this.span = span;
    this.context = context;
    this.epochNanos = epochNanos;
    this.anchorNanos = anchorNanos;
  }

  /** A {@link System#nanoTime()} reading as nanoseconds since the epoch. */
  private long epochNanos(long nanoTime) {
    return epochNanos + (nanoTime - anchorNanos);
  }

  /** Whether the span is sampled: only then does the runtime report into it. */
  boolean recording() {
    return span.isRecording();
  }

  SpanContext spanContext() {
    return span.getSpanContext();
  }

  /** The REST route that answers the call: the span takes its name ({@code POST /v2/...}). */
  void route(String method, String template) {
    span.updateName(method + " " + template);
    span.setAttribute("http.route", template);
  }

  /**
   * Ends the server span as its call is answered: the model and version it ran on, the status, and
   * an error status for a server-side failure (HTTP 5xx; gRPC UNKNOWN, DEADLINE_EXCEEDED,
   * UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS), as OpenTelemetry's conventions have it.
   *
   * @param result the HTTP status, or the gRPC status code's name
   */
  void end(Call call, String result) {
    if (!span.isRecording()) {
      return;
    }
    if (call.model != null) {
      span.setAttribute("berth.model", call.model);
    }
    if (call.version != null) {
      span.setAttribute("berth.model.version", call.version);
    }
    boolean failed;
    if (call.grpc) {
      Status.Code code = Status.Code.valueOf(result);
      span.setAttribute("rpc.grpc.status_code", (long) code.value());
      failed =
          switch (code) {
            case UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS ->
                true;
            default -> false;
          };
    } else {
      int status = Integer.parseInt(result);
      span.setAttribute("http.response.status_code", (long) status);
      failed = status >= 500;
    }
    if (failed) {
      span.setAttribute("error.type", result);
      span.setStatus(StatusCode.ERROR, call.error == null ? "" : call.error);
    }
    span.end(epochNanos(System.nanoTime()), TimeUnit.NANOSECONDS);
  }

  private SpanBuilder child(String name, long startNanos) {
    return tracing
        .tracer()
        .spanBuilder(name)
        .setParent(context)
        .setSpanKind(SpanKind.INTERNAL)
        .setStartTimestamp(epochNanos(startNanos), TimeUnit.NANOSECONDS);
  }

  private void end(Span child, long endNanos) {
    child.end(epochNanos(endNanos), TimeUnit.NANOSECONDS);
  }

  @Override
  public void step(Step step, long startNanos, long endNanos) {
    end(child("berth." + step.name().toLowerCase(Locale.ROOT), startNanos).startSpan(), endNanos);
  }

  @Override
  public void engineCall(
      String model,
      String version,
      List<RequestTrace> batch,
      int requests,
      int rows,
      long startNanos,
      long endNanos,
      Throwable error) {
    SpanBuilder b =
        child("berth.batch", startNanos)
            .setAttribute("berth.model", model)
            .setAttribute("berth.model.version", version)
            .setAttribute("berth.batch.size", (long) rows)
            .setAttribute("berth.batch.requests", (long) requests);
    for (RequestTrace t : batch) {
      if (t instanceof RequestSpan other) {
        b.addLink(other.span.getSpanContext());
      }
    }
    Span call = b.startSpan();
    if (error != null) {
      call.recordException(error);
      call.setStatus(StatusCode.ERROR, error.getClass().getSimpleName());
    }
    end(call, endNanos);
    // every request the call ran has the call in its own trace, as a child linked to the batch
    for (RequestTrace t : batch) {
      if (t instanceof RequestSpan request) {
        request.engine(call.getSpanContext(), requests, rows, startNanos, endNanos, error);
      }
    }
  }

  /** This request's part in an engine call: the call's moments, linked to its batch span. */
  private void engine(
      SpanContext batch, int requests, int rows, long startNanos, long endNanos, Throwable error) {
    Span engine =
        child("berth.engine", startNanos)
            .setAttribute("berth.batch.size", (long) rows)
            .setAttribute("berth.batch.requests", (long) requests)
            .addLink(batch)
            .startSpan();
    if (error != null) {
      engine.setStatus(StatusCode.ERROR, error.getClass().getSimpleName());
    }
    end(engine, endNanos);
  }

  @Override
  public void generation(Generated g) {
    String operation = g.chat() ? "chat" : "text_completion";
    SpanBuilder b =
        child(operation + " " + g.model(), g.startNanos())
            .setAttribute("gen_ai.operation.name", operation)
            .setAttribute("gen_ai.request.model", g.model())
            .setAttribute("gen_ai.response.model", g.model())
            .setAttribute("berth.model.version", g.version())
            .setAttribute("gen_ai.request.max_tokens", (long) g.maxTokens())
            .setAttribute("gen_ai.request.temperature", g.temperature())
            .setAttribute("gen_ai.request.top_p", g.topP())
            .setAttribute("gen_ai.usage.input_tokens", (long) g.inputTokens())
            .setAttribute("gen_ai.usage.output_tokens", (long) g.outputTokens());
    if (g.seed() != null) {
      b.setAttribute("gen_ai.request.seed", (long) g.seed());
    }
    if (g.finishReason() != null) {
      b.setAttribute(
          FINISH_REASONS,
          List.of(g.finishReason() == Generation.FinishReason.STOP ? "stop" : "length"));
    }
    if (g.firstTokenNanos() != 0) {
      // arrival to first token, the wait for a sequence included, as Berth's metric; Berth's own
      // name: GenAI's span conventions have no attribute for it, and their namespace is theirs
      b.setAttribute("berth.time_to_first_token", (g.firstTokenNanos() - g.arrivalNanos()) / 1e9);
    }
    Span generation = b.startSpan();
    if (g.firstTokenNanos() != 0) {
      generation.addEvent(
          "berth.first_token", epochNanos(g.firstTokenNanos()), TimeUnit.NANOSECONDS);
    }
    end(generation, g.endNanos());
  }
}
