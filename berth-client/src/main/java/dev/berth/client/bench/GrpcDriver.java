package dev.berth.client.bench;

import dev.berth.client.grpc.GRPCInferenceServiceGrpc;
import dev.berth.client.grpc.ModelInferRequest;
import dev.berth.client.grpc.ModelInferResponse;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The gRPC side of a step ({@code --protocol grpc}): one HTTP/2 channel, on which a closed loop
 * keeps its share of the step's calls in flight (each answer starts the next) and an open loop
 * starts each call when it falls due (streams multiplex, so no connection waits). Callbacks run on
 * the channel's network thread; failures count by gRPC status ({@code UNAVAILABLE}, {@code
 * DEADLINE_EXCEEDED}, ...).
 */
final class GrpcDriver implements LoadLoop.Driver {
  private final LoadLoop.Window w;
  private final ModelInferRequest[] requests;
  private final boolean open;
  private final int calls;
  private final ManagedChannel channel;
  private final GRPCInferenceServiceGrpc.GRPCInferenceServiceStub stub;
  private final Recorder recorder = new Recorder(); // guarded by this
  private final ScheduledExecutorService retries =
      Executors.newSingleThreadScheduledExecutor(
          r -> Thread.ofPlatform().daemon().name("berth-bench-grpc-retry").unstarted(r));
  private int inFlight; // guarded by this
  private int next;
  private boolean scheduleDone; // guarded by this

  GrpcDriver(
      LoadLoop.Window w,
      String host,
      int port,
      ModelInferRequest[] requests,
      boolean open,
      int calls,
      int firstCall) {
    this.w = w;
    this.requests = requests;
    this.open = open;
    this.calls = calls;
    this.next = (int) (firstCall * 37L % requests.length);
    this.channel =
        Grpc.newChannelBuilderForAddress(host, port, InsecureChannelCredentials.create())
            .directExecutor()
            .disableRetry()
            .maxInboundMessageSize(Integer.MAX_VALUE)
            .build();
    this.stub = GRPCInferenceServiceGrpc.newStub(channel);
  }

  @Override
  public Recorder recorder() {
    return recorder;
  }

  @Override
  public int connections() {
    return 1;
  }

  @Override
  public void due(long k) {
    long due = w.due(k);
    start(requests[(int) (k % requests.length)], due, w.measured(due));
  }

  @Override
  public synchronized void scheduleDone() {
    scheduleDone = true;
    notifyAll();
  }

  @Override
  public void run() {
    try {
      if (!open) {
        for (int i = 0; i < calls; i++) {
          startNext();
        }
      }
      synchronized (this) {
        long deadline = w.end() + w.timeoutNanos() + TimeUnit.SECONDS.toNanos(5);
        while (!finished() && System.nanoTime() < deadline) {
          wait(100); // every finished call notifies
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      retries.shutdownNow();
      channel.shutdownNow();
    }
  }

  private boolean finished() {
    return inFlight == 0 && (open ? scheduleDone : System.nanoTime() >= w.end());
  }

  private void startNext() {
    long now = System.nanoTime();
    if (now >= w.end()) {
      return;
    }
    ModelInferRequest request;
    synchronized (this) {
      request = requests[next];
      if (++next == requests.length) {
        next = 0;
      }
    }
    start(request, now, false);
  }

  /** Starts one call; {@code counted}: an open loop's request due within the measured time. */
  private void start(ModelInferRequest request, long sentAt, boolean counted) {
    synchronized (this) {
      inFlight++;
    }
    stub.withDeadlineAfter(w.timeoutNanos(), TimeUnit.NANOSECONDS)
        .modelInfer(
            request,
            new StreamObserver<>() {
              @Override
              public void onNext(ModelInferResponse value) {
                // the answer's content is not looked at
              }

              @Override
              public void onError(Throwable t) {
                Status s = Status.fromThrowable(t);
                long at = System.nanoTime();
                synchronized (GrpcDriver.this) {
                  if (open ? counted : w.measured(at)) {
                    String d = s.getDescription();
                    recorder.failure(s.getCode().name(), d == null ? s.getCode().name() : d, at);
                  }
                }
                finish(true);
              }

              @Override
              public void onCompleted() {
                long at = System.nanoTime();
                synchronized (GrpcDriver.this) {
                  if (open ? counted : w.measured(at)) {
                    recorder.ok(at - sentAt, at);
                  }
                }
                finish(false);
              }
            });
  }

  /**
   * A call ended. A closed loop starts its next call (10 ms later after a failure, so that a server
   * that is down is not hammered); it cannot finish before the window's end, nor start a call
   * after.
   */
  private void finish(boolean failed) {
    synchronized (this) {
      inFlight--;
      if (inFlight == 0) {
        notifyAll(); // run() waits for the last call to end
      }
    }
    if (open) {
      return;
    }
    if (!failed) {
      startNext();
      return;
    }
    try {
      retries.schedule(this::startNext, 10, TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // the step is over
    }
  }
}
