"""Text augmentation (EDA, Wei and Zou 2019, and back-translation) for strings and token ids.

Every layer takes either

- **strings**: a scalar or a batch ``(batch,)`` of whitespace-separated
  text; the output has the same shape, words joined by single spaces; or
- **token ids**: integer tensors ``(steps,)`` or ``(batch, steps)`` padded at
  the end with ``pad_id``; the output has the same shape, with words that no
  longer fit cut and freed steps padded.

The edits are vectorized TensorFlow ops (strings exist only in TensorFlow),
so text augmentation runs in a ``tf.data`` map under any Keras backend (where
the text pipeline lives, next to ``TextVectorization``) and inside a model
under the TensorFlow backend. Each layer is active only in training, is the
identity at rate 0, and draws from a ``tf.random.Generator`` seeded by
``seed``.

Synonyms come from a table: a dict ``{word: [synonyms]}`` (token ids map to
lists of ids), a path to a file of ``word synonym synonym ...`` lines, or
None for the small English table kreg ships (``DEFAULT_SYNONYMS``).
"""

from __future__ import annotations

import importlib
import os

import keras
import tensorflow as tf
from keras.src.saving import serialization_lib

from kreg.errors import ArgumentError, InputError
from kreg import _validation as v
from kreg.augment._synonyms import DEFAULT_SYNONYMS


def load_synonyms(table) -> dict:
    """A synonym table as a dict: None (kreg's English table), a dict, or a file path."""
    if table is None:
        return dict(DEFAULT_SYNONYMS)
    if isinstance(table, (str, os.PathLike)):
        path = os.fspath(table)
        if not os.path.isfile(path):
            raise v.invalid("synonyms", "a dict or the path of a file of `word synonym ...` lines", path)
        result = {}
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                words = line.split()
                if len(words) >= 2:
                    result.setdefault(words[0], []).extend(words[1:])
        return result
    if not isinstance(table, dict) or not all(isinstance(s, (list, tuple)) for s in table.values()):
        raise v.invalid("synonyms", "a dict of word -> list of synonyms, a file path or None", table)
    table = {key: list(values) for key, values in table.items() if len(values)}
    if table and all(v._is_int(s) for values in table.values() for s in values):
        # Token ids: a saved config (JSON) turned the integer keys into strings.
        table = {int(key) if isinstance(key, str) and key.lstrip("-").isdigit() else key: values
                 for key, values in table.items()}
    return table


class _SynonymTable:
    """TF lookup: token -> (row, count) and a padded matrix of synonyms per row."""

    def __init__(self, table: dict, ids: bool):
        if not table:
            raise v.invalid("synonyms", "a table with at least one word that has synonyms", table)
        keys = list(table)
        key_type = tf.int64 if ids else tf.string
        try:
            width = max(len(s) for s in table.values())
            pad = 0 if ids else ""
            rows = [list(table[k]) + [pad] * (width - len(table[k])) for k in keys]
            self.synonyms = tf.constant(rows, dtype=tf.int64 if ids else tf.string)
            init = tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, dtype=key_type), tf.range(len(keys), dtype=tf.int64))
        except (TypeError, ValueError) as exc:
            kind = "integer token ids" if ids else "strings"
            raise v.invalid("synonyms", f"a table of {kind} (to match the inputs)", f"{type(keys[0]).__name__} keys") from exc
        self.table = tf.lookup.StaticHashTable(init, default_value=-1)
        self.counts = tf.constant([len(table[k]) for k in keys], dtype=tf.int64)

    def lookup(self, tokens, uniform):
        """Per token: whether it has synonyms, and one of them drawn with ``uniform`` in [0, 1)."""
        keys = tf.cast(tokens, tf.int64) if tokens.dtype != tf.string else tokens
        row = self.table.lookup(keys)
        has = row >= 0
        safe = tf.maximum(row, 0)
        count = tf.gather(self.counts, safe)
        pick = tf.minimum(tf.cast(uniform * tf.cast(count, tf.float32), tf.int64), count - 1)
        synonym = tf.gather_nd(self.synonyms, tf.stack([safe, pick], axis=-1))
        return has, tf.cast(synonym, tokens.dtype)


def _compact(tokens, keep, pad):
    """Moves the kept tokens to the front, in order; the rest become ``pad``. Returns (tokens, lengths)."""
    width = tf.shape(tokens)[1]
    position = tf.range(width)[None, :]
    order = tf.argsort(tf.where(keep, position, position + width), axis=1, stable=True)
    lengths = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
    out = tf.gather(tokens, order, batch_dims=1)
    return tf.where(position < lengths[:, None], out, tf.cast(pad, tokens.dtype)), lengths


def _translator_name(arg: str, fn) -> str:
    """How a translator is saved: its Keras registered name, else its import path ``module:function``."""
    try:
        registered = keras.saving.get_registered_name(fn)
    except AttributeError:  # a callable object without __name__
        registered = None
    if registered and keras.saving.get_registered_object(registered) is fn:
        return registered
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<" in name:
        raise v.invalid(arg, "a registered or importable module-level function (so the layer can be saved)", fn)
    return f"{module}:{name}"


def _resolve_translator(arg: str, value):
    """A translator from a function, a Keras registered name or (outside safe mode) ``module:function``.

    A registered name (``"my_package>to_german"``) resolves through
    ``keras.saving.get_registered_object``, which also sees a load's
    ``custom_objects``. A ``module:function`` path is imported only outside
    Keras' safe mode: ``load_model(..., safe_mode=True)`` must never import
    a module that a file names.
    """
    if not isinstance(value, str):
        return value
    fn = keras.saving.get_registered_object(value)
    if fn is not None:
        if isinstance(fn, type):
            raise v.invalid(arg, "a registered function list[str] -> list[str], not a class", value)
        return fn
    how = (f"Register the function with `@keras.saving.register_keras_serializable(package=...)` "
           f"in the loading process (before loading; it is then saved by its registered name), "
           f"or pass it as `custom_objects={{{value!r}: function}}`")
    if ":" not in value:
        raise ArgumentError(f"Invalid value received for argument `{arg}`. No function is registered "
                         f"under {value!r}. {how}. Received: {arg}={value!r}")
    if serialization_lib.in_safe_mode():
        raise InputError(
            f"BackTranslation: refusing to import {value!r} (argument `{arg}`) while loading in safe "
            f"mode: a saved file may not choose which code runs. {how}; or, if you trust this file, "
            f"load it with `keras.saving.load_model(path, safe_mode=False)`.")
    return _import_callable(value)


def _import_callable(path: str):
    module, _, name = path.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


class _TextAugmentation(keras.layers.Layer):
    """Strings or token ids -> a dense (batch, words) token matrix -> ``edit`` -> back."""

    rate_may_be_one = False  # an edit at rate 1 would destroy every sentence

    def __init__(self, rate, pad_id=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        # Strings and integer ids go to `call` as they are: no float conversion.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.rate = v.check_rate("rate", rate, allow_one=self.rate_may_be_one)
        if isinstance(pad_id, bool) or not isinstance(pad_id, int):
            raise v.invalid("pad_id", "an integer token id", pad_id)
        self.pad_id = pad_id
        self.seed = v.check_optional_seed("seed", seed)
        self._generator = (tf.random.Generator.from_seed(seed) if seed is not None
                           else tf.random.Generator.from_non_deterministic_state())

    def uniform(self, shape):
        return self._generator.uniform(shape, dtype=tf.float32)

    def is_active(self):
        return self.rate > 0

    def call(self, inputs, training=True):
        if not training or not self.is_active():
            return inputs
        x = tf.convert_to_tensor(inputs)
        if x.dtype == tf.string:
            return self._strings(x)
        if not x.dtype.is_integer:
            raise InputError(f"{type(self).__name__} takes strings or integer token ids. Received dtype {x.dtype.name}")
        return self._ids(x)

    def _strings(self, x):
        words = tf.strings.split(tf.reshape(x, (-1,)))
        tokens = words.to_tensor(default_value="")
        out, lengths = self.edit(tokens, tf.cast(words.row_lengths(), tf.int32), "")
        joined = tf.strings.reduce_join(tf.RaggedTensor.from_tensor(out, lengths=lengths), axis=1, separator=" ")
        return tf.reshape(joined, tf.shape(x))

    def _ids(self, x):
        if x.shape.rank not in (1, 2):
            raise InputError(f"{type(self).__name__} takes token ids (steps,) or (batch, steps). Received shape {x.shape}")
        batch = x if x.shape.rank == 2 else x[None, :]
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(batch, self.pad_id), tf.int32), axis=1)
        out, _ = self.edit(batch, lengths, self.pad_id)
        out = out[:, : tf.shape(batch)[1]]
        return tf.reshape(out, tf.shape(x))

    def edit(self, tokens, lengths, pad):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs, training=True):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, pad_id=self.pad_id, seed=self.seed)
        return config


class _SynonymAugmentation(_TextAugmentation):
    """Holds the synonym table (built per input kind on first use)."""

    def __init__(self, rate, synonyms=None, pad_id=0, seed=None, **kwargs):
        super().__init__(rate, pad_id=pad_id, seed=seed, **kwargs)
        self.synonyms = load_synonyms(synonyms)
        self._user_table = synonyms is not None
        ids = all(isinstance(k, int) and not isinstance(k, bool) for k in self.synonyms)
        self._table = _SynonymTable(self.synonyms, ids=ids)
        self._ids_table = ids

    def _lookup(self, tokens, uniform):
        if (tokens.dtype != tf.string) != self._ids_table:
            kind = "token ids" if self._ids_table else "words"
            raise InputError(f"{type(self).__name__}: the synonym table holds {kind}, the inputs are "
                             f"{'strings' if tokens.dtype == tf.string else 'token ids'}. Received dtype {tokens.dtype.name}")
        return self._table.lookup(tokens, uniform)

    def get_config(self):
        config = super().get_config()
        config["synonyms"] = self.synonyms if self._user_table else None
        return config


@keras.saving.register_keras_serializable(package="kreg")
class RandomSynonymReplacement(_SynonymAugmentation):
    """Replaces words by a random synonym from a table (EDA's synonym replacement).

    Each word that has synonyms in the table is replaced, with probability
    ``rate``, by one of them drawn uniformly (EDA picks ``n = rate * words``
    of them; this per-word draw replaces the same number on average).

    Args:
        rate: Probability of replacing each word that has synonyms, in
            [0, 1). Default 0.1.
        synonyms: The synonym table: dict, file path, or None for kreg's
            English table. Token-id inputs need a table of ids.
        pad_id: Padding id of token-id inputs. Default 0.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Strings (scalar or ``(batch,)``) or token ids
            (``(steps,)`` or ``(batch, steps)``).
        training: The layer only edits when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> sr = kreg.augment.RandomSynonymReplacement(0.5, seed=0)
        >>> sr(tf.constant(["a good movie with a happy end"]))  # doctest: +SKIP

    References:
        Wei and Zou, "EDA: Easy data augmentation techniques for boosting
        performance on text classification tasks", EMNLP 2019.
    """

    def __init__(self, rate=0.1, synonyms=None, pad_id=0, seed=None, **kwargs):
        super().__init__(rate, synonyms=synonyms, pad_id=pad_id, seed=seed, **kwargs)

    def edit(self, tokens, lengths, pad):
        shape = tf.shape(tokens)
        has, synonym = self._lookup(tokens, self.uniform(shape))
        valid = tf.range(shape[1])[None, :] < lengths[:, None]
        replace = has & valid & (self.uniform(shape) < self.rate)
        return tf.where(replace, synonym, tokens), lengths


@keras.saving.register_keras_serializable(package="kreg")
class RandomInsertion(_SynonymAugmentation):
    """Inserts synonyms of the sentence's own words at random places (EDA's random insertion).

    Before each word, with probability ``rate``, a synonym of a random word
    of the same sentence (one that has synonyms) is inserted. Sentences with
    no word in the table are left as they are; token-id outputs keep their
    length, so words pushed past the end are cut.

    Args:
        rate: Probability of an insertion before each word, in [0, 1).
            Default 0.1.
        synonyms: The synonym table: dict, file path, or None for kreg's
            English table. Token-id inputs need a table of ids.
        pad_id: Padding id of token-id inputs. Default 0.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Strings (scalar or ``(batch,)``) or token ids
            (``(steps,)`` or ``(batch, steps)``).
        training: The layer only edits when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> ri = kreg.augment.RandomInsertion(0.2, seed=0)
        >>> ri(tf.constant(["the film was good"]))  # doctest: +SKIP

    References:
        Wei and Zou, EMNLP 2019.
    """

    def __init__(self, rate=0.1, synonyms=None, pad_id=0, seed=None, **kwargs):
        super().__init__(rate, synonyms=synonyms, pad_id=pad_id, seed=seed, **kwargs)

    def edit(self, tokens, lengths, pad):
        shape = tf.shape(tokens)
        batch, width = shape[0], shape[1]
        has, synonym = self._lookup(tokens, self.uniform(shape))
        valid = tf.range(width)[None, :] < lengths[:, None]
        donors = has & valid
        count = tf.reduce_sum(tf.cast(donors, tf.int32), axis=1, keepdims=True)
        # The k-th word with synonyms of each sentence, k uniform: searchsorted in the running count.
        running = tf.cumsum(tf.cast(donors, tf.int32), axis=1)
        k = tf.cast(self.uniform(shape) * tf.cast(count, tf.float32), tf.int32) + 1
        donor = tf.minimum(tf.searchsorted(running, tf.minimum(k, count), side="left"), width - 1)
        inserted = tf.gather(synonym, donor, batch_dims=1)
        insert = valid & (count > 0) & (self.uniform(shape) < self.rate)
        # Interleave [insert_0, word_0, insert_1, word_1, ...] and keep what exists.
        both = tf.reshape(tf.stack([inserted, tokens], axis=2), (batch, 2 * width))
        keep = tf.reshape(tf.stack([insert, valid], axis=2), (batch, 2 * width))
        return _compact(both, keep, pad)


@keras.saving.register_keras_serializable(package="kreg")
class RandomDeletion(_TextAugmentation):
    """Deletes each word with probability ``rate``, keeping at least one (EDA's random deletion).

    Args:
        rate: Probability of deleting each word, in [0, 1). Default 0.1.
        pad_id: Padding id of token-id inputs. Default 0.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Strings (scalar or ``(batch,)``) or token ids
            (``(steps,)`` or ``(batch, steps)``).
        training: The layer only edits when True (the default).

    Returns:
        A tensor of the input's shape and dtype.

    Example:
        >>> rd = kreg.augment.RandomDeletion(0.1, seed=0)
        >>> rd(tf.constant([[5, 8, 13, 21, 0, 0]]))  # doctest: +SKIP

    References:
        Wei and Zou, EMNLP 2019.
    """

    def __init__(self, rate=0.1, pad_id=0, seed=None, **kwargs):
        super().__init__(rate, pad_id=pad_id, seed=seed, **kwargs)

    def edit(self, tokens, lengths, pad):
        shape = tf.shape(tokens)
        position = tf.range(shape[1])[None, :]
        valid = position < lengths[:, None]
        keep = valid & (self.uniform(shape) >= self.rate)
        # A sentence never loses every word: one random word survives.
        survivor = tf.cast(self.uniform((shape[0], 1)) * tf.cast(lengths[:, None], tf.float32), tf.int32)
        none_kept = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1, keepdims=True) == 0
        keep = keep | (none_kept & (position == survivor) & valid)
        return _compact(tokens, keep, pad)


@keras.saving.register_keras_serializable(package="kreg")
class RandomSwap(_TextAugmentation):
    """Swaps two random words, ``max(1, round(rate * words))`` times per sentence (EDA's random swap).

    Args:
        rate: Swaps per word, in [0, 1). Default 0.1.
        pad_id: Padding id of token-id inputs. Default 0.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Strings (scalar or ``(batch,)``) or token ids
            (``(steps,)`` or ``(batch, steps)``).
        training: The layer only edits when True (the default).

    Returns:
        A tensor of the input's shape and dtype (the same words, reordered).

    Example:
        >>> rs = kreg.augment.RandomSwap(0.2, seed=0)
        >>> rs(tf.constant(["one two three four five"]))  # doctest: +SKIP

    References:
        Wei and Zou, EMNLP 2019.
    """

    def __init__(self, rate=0.1, pad_id=0, seed=None, **kwargs):
        super().__init__(rate, pad_id=pad_id, seed=seed, **kwargs)

    def edit(self, tokens, lengths, pad):
        shape = tf.shape(tokens)
        batch, width = shape[0], shape[1]
        swaps = tf.maximum(1, tf.cast(tf.round(self.rate * tf.cast(lengths, tf.float32)), tf.int32))
        swaps = tf.where(lengths > 1, swaps, 0)
        order = tf.tile(tf.range(width)[None, :], (batch, 1))
        lengths_f = tf.cast(lengths[:, None], tf.float32)

        def body(step, order):
            i = tf.cast(self.uniform((batch, 1)) * lengths_f, tf.int32)
            j = tf.cast(self.uniform((batch, 1)) * lengths_f, tf.int32)
            active = (step < swaps)[:, None]
            a = tf.gather(order, i, batch_dims=1)
            b = tf.gather(order, j, batch_dims=1)
            position = tf.range(width)[None, :]
            swapped = tf.where(position == i, b, tf.where(position == j, a, order))
            return step + 1, tf.where(active, swapped, order)

        most = tf.reduce_max(tf.concat([swaps, [0]], axis=0))  # 0 for an empty batch
        _, order = tf.while_loop(lambda step, _: step < most, body, (tf.constant(0), order))
        return tf.gather(tokens, order, batch_dims=1), lengths


@keras.saving.register_keras_serializable(package="kreg")
class BackTranslation(_TextAugmentation):
    """Paraphrases sentences by translating them to another language and back, with your translator.

    kreg downloads no model: plug in the translation you have (a local
    MarianMT pipeline, a service client, a dictionary). ``translate`` takes
    a list of sentences and returns their translations; with ``back`` given,
    the round trip is ``back(translate(texts))``, else ``translate`` is the
    whole round trip. Each sentence goes through it with probability
    ``rate``; only those are sent, in one call per batch.

    Args:
        translate: A function ``list[str] -> list[str]``, or the name it is
            registered under. Register it with
            ``@keras.saving.register_keras_serializable(package="...")``:
            the layer is then saved by that name and loads in safe mode in
            any process that registered it (or passes it in
            ``custom_objects``). An unregistered module-level function is
            saved by its import path ``"module:function"``, which
            ``load_model`` imports only with ``safe_mode=False``: in safe
            mode (the default) loading refuses it, so a file cannot make
            Keras import and run code of its choosing.
        back: Optional function for the way back, saved the same way.
        rate: Probability of back-translating each sentence, in [0, 1].
            Default 1.0.
        seed: Integer seed. Default None.

    Call arguments:
        inputs: Strings, scalar or ``(batch,)``.
        training: The layer only translates when True (the default).

    Returns:
        A string tensor of the input's shape.

    Example:
        >>> @keras.saving.register_keras_serializable(package="my_translators")
        ... def en_to_de(sentences): ...
        >>> bt = kreg.augment.BackTranslation(en_to_de, back=de_to_en, rate=0.5, seed=0)
        >>> text_ds = text_ds.map(lambda x, y: (bt(x), y))

    References:
        Sennrich et al., "Improving neural machine translation models with
        monolingual data", ACL 2016; Xie et al., "Unsupervised data
        augmentation for consistency training", NeurIPS 2020.
    """

    rate_may_be_one = True  # translating every sentence is the usual setting

    def __init__(self, translate, back=None, rate=1.0, seed=None, **kwargs):
        kwargs.pop("pad_id", None)
        super().__init__(rate, seed=seed, **kwargs)
        self.translate = _resolve_translator("translate", translate)
        self.back = _resolve_translator("back", back)
        for name, fn in (("translate", self.translate), ("back", self.back)):
            if fn is not None and not callable(fn):
                raise v.invalid(name, "a function list[str] -> list[str]", fn)
        if self.translate is None:
            raise v.invalid("translate", "a function list[str] -> list[str]", None)

    @classmethod
    def from_config(cls, config):
        # Resolved here so a refusal reaches the caller of `load_model` as this
        # ValueError, not wrapped in Keras' generic deserialization TypeError.
        config = dict(config)
        for key in ("translate", "back"):
            config[key] = _resolve_translator(key, config.get(key))
        return super().from_config(config)

    def _round_trip(self, texts):
        sentences = [t.decode("utf-8") for t in texts.numpy().tolist()]
        if not sentences:
            return tf.constant([], dtype=tf.string)
        out = list(self.translate(sentences))
        if self.back is not None:
            out = list(self.back(out))
        if len(out) != len(sentences) or not all(isinstance(s, str) for s in out):
            raise InputError(f"BackTranslation: the translator must return one string per sentence; "
                             f"it got {len(sentences)} and returned {len(out)}")
        return tf.constant(out, dtype=tf.string)

    def call(self, inputs, training=True):
        if not training or not self.is_active():
            return inputs
        x = tf.convert_to_tensor(inputs)
        if x.dtype != tf.string:
            raise InputError(f"BackTranslation takes strings. Received dtype {x.dtype.name}")
        flat = tf.reshape(x, (-1,))
        chosen = self.uniform(tf.shape(flat)) < self.rate
        index = tf.where(chosen)[:, 0]
        translated = tf.py_function(self._round_trip, [tf.gather(flat, index)], tf.string)
        translated = tf.ensure_shape(translated, [None])
        out = tf.tensor_scatter_nd_update(flat, index[:, None], translated)
        return tf.reshape(out, tf.shape(x))

    def get_config(self):
        config = super().get_config()
        config.pop("pad_id")
        config.update(translate=_translator_name("translate", self.translate),
                      back=None if self.back is None else _translator_name("back", self.back), rate=self.rate)
        return config
