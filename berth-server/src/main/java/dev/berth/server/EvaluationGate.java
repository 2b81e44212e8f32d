package dev.berth.server;

import dev.berth.api.BerthException;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.client.eval.ClassificationMetrics;
import dev.berth.client.eval.DataFormat;
import dev.berth.client.eval.DataSet;
import dev.berth.client.eval.EvalResult;
import dev.berth.client.eval.Evaluation;
import dev.berth.client.eval.ModelEndpoint;
import dev.berth.client.eval.ModelSignature;
import dev.berth.runtime.GateEvaluator;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.LoadedModel;
import dev.berth.runtime.ModelGate;
import java.net.URI;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * Evaluates a model version on its gate's data set in process: {@code berth eval}'s evaluation,
 * with each request decoded as the OIP v2 REST endpoint decodes it and run on the loaded version
 * directly, before it takes traffic. Every request must be answered: a version that fails one is
 * not evaluated.
 */
public final class EvaluationGate implements GateEvaluator {
  @Override
  public double measure(ModelGate gate, LoadedModel model) {
    DataSet data =
        DataSet.reader(gate.data())
            .format(
                gate.format() == null
                    ? null
                    : DataFormat.valueOf(gate.format().toUpperCase(Locale.ROOT)))
            .labelColumn(gate.labelColumn())
            .idxLabels(gate.dataLabels())
            .read();
    InProcess endpoint = new InProcess(model, gate.data().getParent().toUri());
    Evaluation evaluation =
        Evaluation.builder(endpoint.url(), model.name())
            .version(model.version())
            .input(gate.input())
            .output(gate.output())
            .batchSize(gate.batchSize())
            .concurrency(Math.max(1, model.config().instances()))
            .maxErrors(0)
            .build();
    EvalResult result;
    try {
      result = evaluation.run(endpoint, data);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BerthException("the gate's evaluation was interrupted", e);
    }
    // maxErrors(0): a failed request has failed the run already
    return figure(gate, result.metrics());
  }

  /** The gate's metric out of an evaluation's figures. */
  public static double figure(ModelGate gate, ClassificationMetrics m) {
    return switch (gate.metric()) {
      case ACCURACY -> m.accuracy();
      case MACRO_F1 -> m.macro().f1();
      case WEIGHTED_F1 -> m.weighted().f1();
      case PRECISION, RECALL -> {
        ClassificationMetrics.ClassMetrics c =
            m.perClass().stream()
                .filter(k -> k.label().equals(gate.metricClass()))
                .findFirst()
                .orElseThrow(
                    () ->
                        new BerthException(
                            "gate.class '"
                                + gate.metricClass()
                                + "' is not one of the model's classes "
                                + m.perClass().stream()
                                    .map(ClassificationMetrics.ClassMetrics::label)
                                    .toList()));
        yield gate.metric() == ModelGate.Metric.PRECISION ? c.precision() : c.recall();
      }
    };
  }

  /** One loaded version as an endpoint: OIP v2 request bodies in, OIP v2 response bodies out. */
  private record InProcess(LoadedModel model, URI url) implements ModelEndpoint {
    @Override
    public String modelPath() {
      return "berth:" + model.name() + "/versions/" + model.version();
    }

    @Override
    public ModelSignature metadata() {
      dev.berth.runtime.ModelSignature s = model.signature();
      return new ModelSignature(
          model.name(), List.of(model.version()), s.inputs(), s.outputs(), model.config().labels());
    }

    @Override
    public Answer infer(byte[] body, int jsonLength) throws InterruptedException {
      try {
        InferenceRequest request =
            OipJson.decode(body, jsonLength, model.name(), model.version()).request();
        InferenceResponse response = InferenceService.inferOn(model, request).get();
        return new Answer(200, OipJson.writeResponse(response));
      } catch (ExecutionException | CompletionException e) {
        return error(e.getCause() == null ? e : e.getCause());
      } catch (RuntimeException e) {
        return error(e);
      }
    }

    /** An error as the REST endpoint would answer it, with the engine's own message. */
    private static Answer error(Throwable e) {
      String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
      return new Answer(HttpErrors.answer(e, "gate").status(), HttpErrors.errorBody(message));
    }
  }
}
