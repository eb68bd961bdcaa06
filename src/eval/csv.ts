/**
 * RFC 4180 CSV: quoted fields with doubled quotes and embedded newlines, a leading BOM, CRLF
 * or LF. Rows keep their 1-based line number so errors can point into the file.
 */
import { FormatError } from "../formats/errors.js";

export interface CsvRow {
  line: number;
  fields: string[];
}

export function parseCsv(text: string, fileName: string): CsvRow[] {
  const rows: CsvRow[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let fields: string[] = [];
  let field = "";
  let rowLine = 1;
  let quoted = false;
  let atFieldStart = true;
  const endField = () => {
    fields.push(field);
    field = "";
    atFieldStart = true;
  };
  const endRow = () => {
    endField();
    if (!(fields.length === 1 && fields[0] === "")) rows.push({ line: rowLine, fields });
    fields = [];
  };
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === "\n") line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && atFieldStart) {
      quoted = true;
      atFieldStart = false;
    } else if (c === ",") endField();
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      endRow();
      line++;
      rowLine = line;
    } else {
      field += c;
      atFieldStart = false;
    }
  }
  if (quoted) throw new FormatError(`${fileName}: line ${rowLine}: a quoted field is never closed`);
  if (field !== "" || fields.length > 0) endRow();
  return rows;
}
