"""Writes a small text PDF by hand (one Helvetica page per list of lines): how the sample PDF collection is made.

Regenerate the sample: ``python -m tests.knowledge.pdf_writer config/knowledge/clinic/parking-and-access.pdf``.
"""

from __future__ import annotations

import sys
from pathlib import Path

PARKING_AND_ACCESS = [
    "Harbor Street Clinic - Parking and Access",
    "",
    "Visitors park in the Lindqvist garage on Pier Road, levels 2 and 3.",
    "The garage barrier opens with the visitor code PELICAN-7731.",
    "Parking is free for the first two hours with a validated ticket.",
    "Wheelchair access is through the east entrance; the lift serves all floors.",
    "Bicycle racks are next to the pharmacy door.",
]


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(pages: list[list[str]]) -> bytes:
    """A valid PDF 1.4 whose pages carry the given lines as extractable text (Latin-1 only)."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        content_id = page_ids[i] + 1
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {content_id} 0 R >>".encode()
        )
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            ops.append(f"({_escape(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


if __name__ == "__main__":
    Path(sys.argv[1]).write_bytes(pdf_bytes([PARKING_AND_ACCESS]))
