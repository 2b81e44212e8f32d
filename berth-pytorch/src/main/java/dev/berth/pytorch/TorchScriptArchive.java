package dev.berth.pytorch;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * What a TorchScript file ({@code torch.jit.save}'s zip archive) says of its {@code forward}
 * method, read from the archive itself: the root module's class is the first global of {@code
 * data.pkl}, and its TorchScript source under {@code code/} declares {@code forward} with its
 * parameters and return type. libtorch (through DJL) exposes no method schema, and this reading is
 * what lets a wrong number of declared inputs or outputs fail at load rather than on every request.
 * It is best effort: an archive laid out otherwise gives no schema, and the engine then learns of a
 * mismatch when it runs.
 */
final class TorchScriptArchive {
  private TorchScriptArchive() {}

  /**
   * The parameters (without {@code self}) and return type of the root module's forward method.
   *
   * @param parameters parameter names, in order
   * @param required how many leading parameters have no default value
   * @param returnType TorchScript's type, e.g. {@code Tensor}, {@code Tuple[Tensor, Tensor]}
   */
  record Forward(List<String> parameters, int required, String returnType) {
    Forward {
      parameters = List.copyOf(parameters);
    }

    /** The elements of a {@code Tuple[...]} return type; empty for any other type. */
    List<String> tupleElements() {
      if (!returnType.startsWith("Tuple[") || !returnType.endsWith("]")) {
        return List.of();
      }
      return split(returnType.substring(6, returnType.length() - 1));
    }

    /** How the method reads, for messages: {@code forward(ids, scale) -> Tensor}. */
    @Override
    public String toString() {
      return "forward(" + String.join(", ", parameters) + ") -> " + returnType;
    }
  }

  /** The forward schema of the archive at {@code file}, or empty when it cannot be read. */
  static Optional<Forward> forward(Path file) {
    try (ZipFile zip = new ZipFile(file.toFile())) {
      ZipEntry data = null;
      for (var entries = zip.entries(); entries.hasMoreElements(); ) {
        ZipEntry e = entries.nextElement();
        String[] parts = e.getName().split("/");
        if (parts.length == 2 && parts[1].equals("data.pkl")) {
          data = e;
          break;
        }
      }
      if (data == null) {
        return Optional.empty();
      }
      String prefix = data.getName().substring(0, data.getName().indexOf('/') + 1);
      String[] global = rootClass(read(zip, data));
      if (global == null) {
        return Optional.empty();
      }
      ZipEntry code = zip.getEntry(prefix + "code/" + global[0].replace('.', '/') + ".py");
      if (code == null) {
        return Optional.empty();
      }
      return parse(new String(read(zip, code), StandardCharsets.UTF_8), global[1]);
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  private static byte[] read(ZipFile zip, ZipEntry entry) throws IOException {
    try (InputStream in = zip.getInputStream(entry)) {
      return in.readNBytes(4 << 20);
    }
  }

  /** Module and class name of a pickle's first GLOBAL opcode ({@code c module\n name\n}). */
  private static String[] rootClass(byte[] pickle) {
    int i = 0;
    if (pickle.length > 2 && (pickle[0] & 0xff) == 0x80) {
      i = 2; // PROTO n
    }
    if (i >= pickle.length || pickle[i] != 'c') {
      return null;
    }
    String rest =
        new String(pickle, i + 1, Math.min(pickle.length - i - 1, 1024), StandardCharsets.UTF_8);
    String[] lines = rest.split("\n", 3);
    return lines.length < 3 ? null : new String[] {lines[0], lines[1]};
  }

  /** The forward method of class {@code name} in TorchScript source. */
  static Optional<Forward> parse(String source, String name) {
    int cls = source.indexOf("class " + name + "(");
    if (cls < 0) {
      return Optional.empty();
    }
    int def = source.indexOf("def forward(", cls);
    int nextClass = source.indexOf("\nclass ", cls + 1);
    if (def < 0 || (nextClass >= 0 && def > nextClass)) {
      return Optional.empty();
    }
    int open = def + "def forward(".length();
    int close = matching(source, open - 1);
    if (close < 0) {
      return Optional.empty();
    }
    int arrow = source.indexOf("->", close);
    int colon = source.indexOf(":\n", close);
    if (arrow < 0 || colon < 0 || arrow > colon) {
      return Optional.empty();
    }
    String returnType = source.substring(arrow + 2, colon).strip();
    List<String> names = new ArrayList<>();
    int required = 0;
    boolean optionalSeen = false;
    List<String> params = split(source.substring(open, close));
    for (int i = 1; i < params.size(); i++) { // [0] is self
      String p = params.get(i);
      int typeAt = p.indexOf(':');
      String paramName = (typeAt < 0 ? p : p.substring(0, typeAt)).strip();
      if (paramName.isEmpty() || paramName.startsWith("*")) {
        return Optional.empty();
      }
      names.add(paramName);
      if (p.indexOf('=', Math.max(typeAt, 0)) >= 0) {
        optionalSeen = true;
      } else if (!optionalSeen) {
        required++;
      }
    }
    return Optional.of(new Forward(names, required, returnType));
  }

  private static int matching(String s, int open) {
    int depth = 0;
    for (int i = open; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '(' || c == '[') {
        depth++;
      } else if (c == ')' || c == ']') {
        depth--;
        if (depth == 0) {
          return i;
        }
      }
    }
    return -1;
  }

  /** Splits at the commas outside brackets, trimmed, empty parts dropped. */
  static List<String> split(String list) {
    List<String> out = new ArrayList<>();
    int depth = 0;
    int start = 0;
    for (int i = 0; i <= list.length(); i++) {
      char c = i == list.length() ? ',' : list.charAt(i);
      if (c == '(' || c == '[') {
        depth++;
      } else if (c == ')' || c == ']') {
        depth--;
      } else if (c == ',' && depth == 0) {
        String part = list.substring(start, i).strip();
        if (!part.isEmpty()) {
          out.add(part);
        }
        start = i + 1;
      }
    }
    return out;
  }
}
