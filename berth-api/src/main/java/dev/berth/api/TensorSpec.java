package dev.berth.api;

import java.util.Arrays;
import java.util.Objects;

/**
 * What a model takes or gives for one tensor: name, datatype and shape, where -1 is a dimension of
 * any size.
 */
public record TensorSpec(String name, DataType datatype, long[] shape) {

  public TensorSpec {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(datatype, "datatype");
    shape = shape.clone();
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Whether a tensor of this shape fits, -1 matching any size. */
  public boolean accepts(long[] actual) {
    if (actual.length != shape.length) {
      return false;
    }
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] >= 0 && shape[i] != actual[i]) {
        return false;
      }
    }
    return true;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorSpec t
        && name.equals(t.name)
        && datatype == t.datatype
        && Arrays.equals(shape, t.shape);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, datatype, Arrays.hashCode(shape));
  }

  @Override
  public String toString() {
    return name + " " + datatype + Arrays.toString(shape);
  }
}
