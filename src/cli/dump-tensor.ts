import { openGguf, writeAll, writeAtomically } from "../formats/gguf/index.js";
import { dequantize } from "../formats/quants/index.js";
import { ggmlTypeName } from "../formats/ggml-types.js";
import { UsageError } from "../errors.js";
import { parseCommandArgs, type Command } from "./command.js";

/** Rows are dequantized in slices of about this many values, so memory stays small. */
const SLICE_VALUES = 1 << 22;

export const dumpTensorCommand: Command = {
  usage: `usage: zh-llama dump-tensor MODEL.gguf TENSOR_NAME --out FILE [--force]

Writes the tensor dequantized to little-endian float32, row-major in GGUF's dimension order
(ne[0] varies fastest), e.g. for comparison with numpy: np.fromfile(FILE, "<f4").
  --force   replace FILE if it exists`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: { out: { type: "string", short: "o" }, force: { type: "boolean" } },
    });
    if (positionals.length !== 2) throw new UsageError("expected MODEL.gguf and TENSOR_NAME");
    if (!values.out) throw new UsageError("--out FILE is required");
    const file = await openGguf(positionals[0]!);
    try {
      const info = file.tensor(positionals[1]!);
      const rowLength = info.shape[0]!;
      const rows = info.elements / rowLength;
      const rowsPerSlice = Math.max(1, Math.floor(SLICE_VALUES / rowLength));
      await writeAtomically(values.out, values.force ?? false, async (handle) => {
        for (let row = 0; row < rows; row += rowsPerSlice) {
          const count = Math.min(rowsPerSlice, rows - row);
          const f32 = dequantize(info.type, await file.readTensorRows(info, row, count), count * rowLength);
          await writeAll(handle, new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength), row * rowLength * 4);
        }
      });
      io.stderr(`${info.name}: ${ggmlTypeName(info.type)} [${info.shape.join(", ")}] -> ${values.out} (${info.elements * 4} bytes of float32)\n`);
      return 0;
    } finally {
      await file.close();
    }
  },
};
