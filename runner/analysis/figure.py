"""The end every report picture shares: labels, grid, legend, saved, closed (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PNG_DPI = 110


def finish(plt: Any, fig: Any, ax: Any, path: Path, xlabel: str, ylabel: str, title: str | None = None, legend: str | None = "small") -> None:
    """Label the axes, grid and legend, save the picture at PNG_DPI and free it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=legend)
    fig.tight_layout()
    fig.savefig(path, dpi=PNG_DPI)
    plt.close(fig)
