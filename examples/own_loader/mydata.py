"""Your data loader: any function returning x_train/y_train (and optionally x_val/y_val, x_test/y_test).

scikit-learn's breast_cancer (569 tumours x 30 features, bundled): a fixed, stratified 25% test split.
kreg standardizes the features with training statistics and carves validation from the training part.
"""
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split


def load():
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
