"""The ``npmf`` command line (also ``python -m npmf``).

``npmf train`` with no arguments runs the Keras MovieLens recipe on ML-100k.
A user error prints one line on stderr and exits with status 2.
"""

import argparse
import json
import sys
import time

__all__ = ["main"]


class UserError(Exception):
    """An error in the user's input: reported in one line, without a traceback."""


def build_parser():
    parser = argparse.ArgumentParser(prog="npmf", description="Matrix factorisation for explicit ratings.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="fit a model, print the epoch log and test metrics")
    _add_data_args(train)
    _add_model_args(train)
    train.add_argument("--save", metavar="PATH", help="save the fitted model (.npz)")
    train.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    train.set_defaults(func=cmd_train)

    cv = sub.add_parser("cv", help="cross-validate: per-fold and mean RMSE, MAE, rounded MAE")
    cv.add_argument(
        "--data",
        default="ml-100k",
        help="'ml-100k' (its u1-u5 folds), another MovieLens release or a ratings file (random folds)",
    )
    _add_file_args(cv)
    cv.add_argument("--folds", type=int, default=5, help="number of random folds of a ratings file (default 5)")
    cv.add_argument("--splits", default=None, help="MovieLens splits to use, comma-separated (default u1,...,u5)")
    cv.add_argument("--seed", type=_seed, default=0, help="random_state of the folds and the model (default 0)")
    cv.add_argument("--clip", action="store_true", help="clip predictions to each fold's training rating range")
    _add_model_args(cv)
    cv.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    cv.set_defaults(func=cmd_cv)

    rec = sub.add_parser("recommend", help="top-n items for users from a saved model (user_id, rank, item_id, score)")
    rec.add_argument("--model", required=True, metavar="PATH", help="a model saved by `npmf train --save`")
    who = rec.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", action="append", help="raw user id; repeat, or separate by commas, for several")
    who.add_argument("--users-file", metavar="PATH", help="a file of user ids, one a line")
    who.add_argument("--all-users", action="store_true", help="every user in the model")
    rec.add_argument("-n", type=int, default=10, help="how many items per user (default 10)")
    rec.add_argument("--include-seen", action="store_true", help="also rank items the user rated in training")
    rec.add_argument(
        "--min-item-ratings",
        type=int,
        default=None,
        metavar="N",
        help="leave out items with fewer than N training ratings (default: the library's, 10; 0 keeps all)",
    )
    rec.add_argument("--out", metavar="PATH", help="write the table as CSV here instead of printing it")
    rec.add_argument("--json", action="store_true", help="print a JSON list of {user_id, rank, item_id, score}")
    rec.set_defaults(func=cmd_recommend)

    pred = sub.add_parser("predict", help="predicted ratings for (user, item) pairs from a saved model")
    pred.add_argument("--model", required=True, metavar="PATH", help="a model saved by `npmf train --save`")
    pred.add_argument("--data", required=True, metavar="PATH", help="CSV of user, item pairs (further columns kept)")
    pred.add_argument("--sep", default=",", help="separator of --data (default ',')")
    pred.add_argument("--out", metavar="PATH", help="write CSV here (default: stdout)")
    pred.add_argument("--clip", action="store_true", help="clip to the training rating range")
    pred.set_defaults(func=cmd_predict)

    exp = sub.add_parser("export", help="write the factors in Spark ALS's shape (id, features) and the biases")
    exp.add_argument("--model", required=True, metavar="PATH", help="a model saved by `npmf train --save`")
    exp.add_argument("--out", required=True, metavar="DIR", help="folder to write (created if missing)")
    exp.add_argument("--format", choices=("csv", "parquet"), default="csv", help="csv (default) or parquet (pyarrow)")
    exp.set_defaults(func=cmd_export)

    gc = sub.add_parser("gradcheck", help="check the analytic gradients against central finite differences")
    gc.add_argument("--users", type=int, default=5, help="rows of W (default 5)")
    gc.add_argument("--items", type=int, default=4, help="rows of H (default 4)")
    gc.add_argument("--factors", type=int, default=3, help="n_factors (default 3)")
    gc.add_argument("--ratings", type=int, default=16, help="batch size; must exceed --users and --items (default 16)")
    gc.add_argument("--biases", action=argparse.BooleanOptionalAction, default=True, help="check bu, bi (default on)")
    gc.add_argument("--reg", type=float, default=0.1, help="L2 strength, per occurrence (default 0.1)")
    gc.add_argument("--step", type=float, default=1e-3, help="finite-difference step (default 1e-3)")
    gc.add_argument("--seed", type=_seed, default=0, help="random_state of the problem (default 0)")
    which = gc.add_mutually_exclusive_group()
    which.add_argument("--kernel", action="store_true", help="check the Numba kernel's gradients, not the NumPy ones")
    which.add_argument(
        "--gradients",
        metavar="FILE.py:FUNCTION",
        help="check your own gradients(W, H, bu, bi, u, i, e, reg) instead, e.g. "
        "examples/exercises/gradients_exercise.py:gradients; a wrong block is named, with a hint",
    )
    gc.add_argument("--json", action="store_true", help="print one JSON object with max_rel_error on stdout")
    gc.set_defaults(func=cmd_gradcheck)
    return parser


def _add_data_args(p):
    p.add_argument(
        "--data",
        default="ml-100k",
        help="a MovieLens release (ml-100k, ml-1m, ml-10m, ml-25m, ml-latest-small; downloaded if missing) "
        "or a ratings file",
    )
    _add_file_args(p)
    p.add_argument(
        "--test-size", type=float, default=0.2, help="fraction held out for testing (default 0.2; 0 trains on all)"
    )
    p.add_argument("--seed", type=_seed, default=0, help="random_state of the split and the model (default 0)")


def _add_file_args(p):
    p.add_argument("--sep", default=None, help="separator of a ratings file (guessed if omitted)")
    p.add_argument(
        "--columns",
        type=_columns,
        default=None,
        metavar="U,I,R[,T]",
        help="the file's user, item, rating (and timestamp) columns, by header name or 0-based position, "
        "e.g. userId,movieId,rating or 1,0,2 (default: the header's names, else the first columns)",
    )
    p.add_argument("--encoding", default="utf-8", help="text encoding of a ratings file (default utf-8)")


def _seed(text):
    """``--seed``: a whole number >= 0, as numpy's generators take."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, e.g. --seed 0; got {text!r}")
    return value


def _columns(text):
    """``--columns``: comma-separated names, or 0-based positions where a field is a whole number."""
    fields = [f.strip() for f in text.split(",")]
    if not 3 <= len(fields) <= 4 or not all(fields):
        raise argparse.ArgumentTypeError(
            f"must name 3 or 4 columns, comma-separated (user, item, rating[, timestamp]); got {text!r}"
        )
    return [int(f) if f.isdigit() else f for f in fields]


def _add_model_args(p):
    # Defaults are None so that only the flags the user gave override the preset.
    p.add_argument(
        "--preset",
        default="seed",
        help="named model: seed (the Keras recipe, default), accurate (Gibbs-sampled "
        "BayesianMatrixFactorization), accurate_sgd",
    )
    p.add_argument("--factors", type=int, help="n_factors (default: the preset's)")
    p.add_argument("--epochs", type=int, help="epochs (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the preset's)")
    p.add_argument("--optimizer", help="adam (Keras-exact), lazy_adam or sgd (default: the preset's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the preset's)")
    p.add_argument("--reg", type=float, help="L2 strength per occurrence (default: the preset's)")
    p.add_argument(
        "--biases", action=argparse.BooleanOptionalAction, help="learn user and item biases (default: the preset's)"
    )


def _is_release(args):
    """Whether ``--data`` names a MovieLens release rather than a file (a file of that name wins)."""
    import os

    from npmf.data.movielens import MOVIELENS

    if args.data in MOVIELENS or (args.data.startswith("ml-") and not os.path.exists(args.data)):
        given = [f"--{f}" for f in ("sep", "columns") if getattr(args, f) is not None]
        given += ["--encoding"] if args.encoding != "utf-8" else []
        if given:
            raise UserError(f"{', '.join(given)} applies to a ratings file; {args.data} is a MovieLens release")
        return True
    return False


def load_data(args):
    import npmf

    if _is_release(args):
        return npmf.load_movielens(args.data)
    return npmf.read_ratings(args.data, sep=args.sep, columns=args.columns, encoding=args.encoding)


def load_folds(args):
    """``npmf cv``'s folds: MovieLens' own splits, or random folds of a release or a file."""
    import npmf
    from npmf.data.movielens import FOLDS

    if _is_release(args) and args.data in FOLDS:
        splits = None if args.splits is None else [s.strip() for s in args.splits.split(",") if s.strip()]
        return npmf.load_movielens_folds(args.data, splits=splits)
    if args.splits is not None:
        raise UserError(f"--splits names MovieLens' own splits ({', '.join(FOLDS)}); for {args.data} use --folds N")
    return npmf.model_selection.kfold(load_data(args), args.folds, random_state=args.seed)


# The model flags and the estimator parameters they set.
_MODEL_FLAGS = {"factors": "n_factors", "epochs": "epochs", "batch_size": "batch_size", "optimizer": "optimizer",
                "lr": "learning_rate", "reg": "reg", "biases": "biases"}  # fmt: skip


def model_from_args(args):
    import npmf
    from npmf import presets

    overrides = {param: getattr(args, flag) for flag, param in _MODEL_FLAGS.items() if getattr(args, flag) is not None}
    estimator = presets.ESTIMATORS.get(args.preset)
    if estimator is not None:
        valid = set(getattr(npmf, estimator)._param_names())
        for flag, param in _MODEL_FLAGS.items():
            if param in overrides and param not in valid:
                raise UserError(
                    f"--{flag.replace('_', '-')} does not apply to preset {args.preset!r}, a {estimator} "
                    f"(its model flags: {', '.join('--' + f for f, p in _MODEL_FLAGS.items() if p in valid)})"
                )
    return presets.from_preset(args.preset, **overrides, random_state=args.seed)


def cmd_train(args):
    import npmf
    from npmf import metrics

    model = model_from_args(args)
    model._config()  # bad options fail before any data is read
    if not 0 <= args.test_size < 1:
        raise UserError(f"--test-size must be a fraction in [0, 1) (0 trains on all the data); got {args.test_size}")
    df = load_data(args)
    if args.test_size == 0:
        train, test = df, df.iloc[:0]
    else:
        train, test = npmf.train_test_split(df, test_size=args.test_size, random_state=args.seed)
    model.set_params(verbose=0 if args.quiet or args.json else 2)  # Keras' verbose=2: one line per epoch

    start = time.perf_counter()
    model.fit(train.user_id, train.item_id, train.rating)
    fit_seconds = time.perf_counter() - start
    scores = dict.fromkeys(("rounded_mae", "mae", "rmse"))  # None without a test set
    if len(test):
        pred = model.predict(test.user_id, test.item_id)
        scores = {
            # Rounded to the data's own grid: whole stars on ML-100k (the recipe's np.round), half stars on ML-10M.
            "rounded_mae": metrics.rounded_mae(test.rating, pred, step=metrics.rating_step(train.rating)),
            "mae": metrics.mae(test.rating, pred),
            "rmse": metrics.rmse(test.rating, pred),
        }
    result = {
        **scores,
        "fit_seconds": fit_seconds,
        "n_train": len(train),
        "n_test": len(test),
        "params": model.get_params(),
        "history": model.history_,
    }
    if args.save:
        model.save(args.save)
        result["saved"] = args.save
    if args.json:
        print(json.dumps(result))
    else:
        if len(test):
            print(
                f"{len(train):,} train / {len(test):,} test ratings; fit {fit_seconds:.2f}s; "
                f"test rounded MAE {result['rounded_mae']:.4f}, MAE {result['mae']:.4f}, RMSE {result['rmse']:.4f}"
            )
        else:
            print(f"{len(train):,} train ratings, no test set (--test-size 0); fit {fit_seconds:.2f}s")
        if args.save:
            print(f"model saved to {args.save}")
    return 0


def cmd_cv(args):
    import npmf

    model = model_from_args(args)
    model._config()  # bad options fail before any data is read
    folds = load_folds(args)
    table = npmf.cross_validate(model, folds, clip=True if args.clip else None, verbose=not args.json)
    if args.json:
        per_fold = table.drop(index=["mean", "std"])
        print(
            json.dumps(
                {
                    "data": args.data,
                    "preset": args.preset,
                    "params": model.get_params(),
                    "folds": [{"fold": int(k), **_floats(row)} for k, row in per_fold.iterrows()],
                    "mean": _floats(table.loc["mean"]),
                    "std": _floats(table.loc["std"]),
                }
            )
        )
    else:
        shown = table.copy()
        shown[["n_train", "n_test"]] = shown[["n_train", "n_test"]].round().astype(int)
        print(shown.drop(index="std").to_string(float_format=lambda x: f"{x:.4f}"))
    return 0


def _floats(row):
    """A table row as JSON numbers: counts as ints when whole, the rest as floats."""
    return {k: int(v) if k.startswith("n_") and float(v).is_integer() else float(v) for k, v in row.items()}


def cmd_recommend(args):
    from ._cli_serve import recommend

    return recommend(args)


def cmd_predict(args):
    from ._cli_serve import predict

    return predict(args)


def cmd_export(args):
    from ._cli_serve import export

    return export(args)


def _parse_id(text, known_ids):
    """A command-line id as the model's id type (int for integer ids)."""
    if known_ids.dtype.kind in "iu":
        try:
            return int(text)
        except ValueError:
            raise UserError(f"--user must be an integer id for this model; got {text!r}") from None
    return text


def _plain(x):
    return x.item() if hasattr(x, "item") else x


_GRADCHECK_FLAGS = {"n_users": "--users", "n_items": "--items", "n_factors": "--factors", "n_ratings": "--ratings",
                    "reg": "--reg", "step": "--step", "gradients": "--gradients"}  # fmt: skip


def cmd_gradcheck(args):
    """Exit 0 when the max relative error is within 1e-7, 1 when above or when ``--gradients`` cannot be checked.

    A ``--gradients`` file that is missing, does not parse, fails to load or lacks the function is a user error (2).
    """
    from npmf.sgd.gradcheck import format_report, gradcheck, kernel_gradients
    from npmf.sgd.gradcheck_student import load_function

    try:
        result = gradcheck(
            n_users=args.users, n_items=args.items, n_factors=args.factors, n_ratings=args.ratings,
            biases=args.biases, reg=args.reg, step=args.step, random_state=args.seed,
            grad_fn=kernel_gradients if args.kernel else None,
            gradients=load_function(args.gradients) if args.gradients else None,
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        # Name the flag the user typed, not the Python argument behind it.
        message = str(exc)
        for arg, flag in _GRADCHECK_FLAGS.items():
            if message.startswith(arg + " "):
                message = flag + message[len(arg) :]
        raise UserError(message) from None
    print(json.dumps(result) if args.json else format_report(result))
    return 0 if result["passed"] else 1


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import npmf

        print(npmf.__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (UserError, ValueError, OSError, FloatingPointError) as exc:
        print(f"npmf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"npmf {args.command}: interrupted", file=sys.stderr)
        return 130
