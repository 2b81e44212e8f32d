package dev.berth.image;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Writes a plan as a Dockerfile and its build context, for pipelines that insist on {@code docker
 * build}: one {@code COPY} per planned layer, in the same order, then the same environment, labels,
 * ports, user and entrypoint.
 */
public final class DockerfileExport {
  private static final ObjectMapper JSON = new ObjectMapper();

  private DockerfileExport() {}

  /**
   * Writes {@code dir/Dockerfile} and {@code dir/layers/...}.
   *
   * @param plan the image plan
   * @param base the base image; a registry reference or an engine image, which {@code FROM} can
   *     name
   * @param dir the build context to write (created; must be empty or absent)
   * @return the Dockerfile
   */
  public static Path write(ImagePlan plan, ImageLocation base, Path dir) {
    String from =
        switch (base) {
          case ImageLocation.Registry r -> r.reference();
          case ImageLocation.Daemon d -> d.reference();
          case ImageLocation.Archive a ->
              throw new BerthException(
                  "a Dockerfile's FROM cannot name an archive ("
                      + a
                      + "); give --base as a registry reference or docker://NAME:TAG");
        };
    try {
      if (Files.isDirectory(dir)) {
        try (var s = Files.list(dir)) {
          if (s.findAny().isPresent()) {
            throw new BerthException(
                dir + " is not empty; give a new or empty directory for the Dockerfile export");
          }
        }
      }
      Files.createDirectories(dir);
      StringBuilder df = new StringBuilder();
      df.append("# The image of Berth service '")
          .append(plan.service().name())
          .append("', as 'berth build' makes it from ")
          .append(plan.service().file().getFileName())
          .append(".\n# Build it with: docker build -t ")
          .append(plan.service().name())
          .append(" .\n");
      df.append("FROM ").append(from).append("\n\n");
      int n = 0;
      for (ImagePlan.Layer layer : plan.layers()) {
        n++;
        String folder =
            String.format(
                Locale.ROOT, "layers/%02d-%s", n, layer.name().replaceAll("[^A-Za-z0-9.]+", "-"));
        for (ImagePlan.Entry e : layer.files()) {
          Path out = dir.resolve(folder).resolve(e.path().substring(1));
          Files.createDirectories(out.getParent());
          Files.copy(e.source(), out, StandardCopyOption.REPLACE_EXISTING);
          Files.setPosixFilePermissions(
              out, PosixFilePermissions.fromString(e.executable() ? "rwxr-xr-x" : "rw-r--r--"));
        }
        df.append("# ").append(layer.name()).append('\n');
        df.append("COPY ").append(folder).append("/ /\n");
      }
      df.append('\n');
      for (Map.Entry<String, String> env : plan.environment().entrySet()) {
        df.append("ENV ")
            .append(env.getKey())
            .append('=')
            .append(quote(env.getValue()))
            .append('\n');
      }
      for (Map.Entry<String, String> label : plan.labels().entrySet()) {
        df.append("LABEL ")
            .append(quote(label.getKey()))
            .append('=')
            .append(quote(label.getValue()))
            .append('\n');
      }
      for (int port : plan.ports()) {
        df.append("EXPOSE ").append(port).append("/tcp\n");
      }
      df.append("WORKDIR ").append(plan.workingDirectory()).append('\n');
      df.append("USER ").append(plan.user()).append('\n');
      df.append("ENTRYPOINT ").append(json(plan.entrypoint())).append('\n');
      df.append("CMD ").append(json(plan.cmd())).append('\n');
      Path dockerfile = dir.resolve("Dockerfile");
      Files.writeString(dockerfile, df.toString(), StandardCharsets.UTF_8);
      return dockerfile;
    } catch (IOException e) {
      throw new BerthException(
          "cannot write the Dockerfile export to " + dir + ": " + e.getMessage(), e);
    }
  }

  private static String json(List<String> words) {
    try {
      return JSON.writeValueAsString(words);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A double-quoted Dockerfile word. */
  private static String quote(String value) {
    return json(List.of(value)).replaceAll("^\\[|\\]$", "").replace("$", "\\$");
  }
}
