"""Logistic regression by gradient descent on a dask array, on a local dask.distributed cluster.

The data (``--rows`` x ``--cols``, synthetic, made in chunks on the workers and kept there) is
never gathered on the client: ``symdiff.value_and_grad`` of the loss, called with NumPy
parameters and dask data, returns the loss and the gradients as lazy dask arrays -- one task
graph, computed once per epoch by ``dask.compute``. The parameters stay NumPy arrays. Each epoch
prints the loss, the gradient's norm and the seconds it took; the run fails (exit 1) unless the
loss falls and the weights found point the way of the true ones. docs/scale-out.md explains.

    python3 samples/distributed_logreg.py                      # 10^5 x 20, 3 epochs
    python3 samples/distributed_logreg.py --rows 1000000 --epochs 10
"""

import argparse
import sys
import time

import numpy as np

import symdiff

try:
    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster
except ImportError:  # (an optional dependency: pip install 'symdiff[dask]')
    dask = None


def loss(w, b, X, y):
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z)


def synthetic(rows: int, cols: int, chunk: int) -> tuple:
    """Features and 0/1 labels of a known logistic model, as dask arrays, and its weights."""
    w_true = np.linspace(-2.0, 2.0, cols)
    rs = da.random.RandomState(0)
    X = rs.standard_normal((rows, cols), chunks=(chunk, cols))
    p = 1.0 / (1.0 + np.exp(-(X @ w_true + 0.5)))
    y = (rs.random_sample(rows, chunks=chunk) < p).astype(float)
    return X, y, w_true


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2.0)
    args = parser.parse_args()
    if dask is None:
        print("distributed_logreg.py needs dask: pip install 'dask[array,distributed]' (or 'symdiff[dask]')",
              file=sys.stderr)
        return 0

    loss_and_grads = symdiff.value_and_grad(loss, argnums=(0, 1))
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=False, dashboard_address=None) \
            as cluster, Client(cluster):
        X, y, w_true = synthetic(args.rows, args.cols, chunk=max(args.rows // (4 * args.workers), 1))
        X, y = dask.persist(X, y)  # made on the workers, once, and kept there
        w, b = np.zeros(args.cols), 0.0
        losses = []
        for epoch in range(args.epochs):
            start = time.perf_counter()
            value, (dw, db) = dask.compute(*loss_and_grads(w, b, X, y))  # one graph: loss and gradients
            w, b = w - args.lr * dw, b - args.lr * float(db)
            losses.append(float(value))
            norm = float(np.sqrt(np.sum(dw ** 2) + db ** 2))
            print(f"epoch {epoch + 1:3d}  loss {value:.6f}  |grad| {norm:.6f}  {time.perf_counter() - start:6.2f} s")
    print(f"generated gradient (specialised for dask data):\n{loss_and_grads.source}")
    cosine = float(w @ w_true / (np.linalg.norm(w) * np.linalg.norm(w_true)))
    print(f"cosine between the weights found and the true ones: {cosine:.4f}")
    if args.epochs and not (losses[-1] < np.log(2.0) and cosine > 0.9):
        print("training did not converge", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
