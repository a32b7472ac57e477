"""The content gate's form: the shopper's e-mail before a code is revealed."""

from django import forms


class GateForm(forms.Form):
    # 200 is the longest e-mail the issue service accepts.
    email = forms.EmailField(
        label="Your e-mail address",
        max_length=200,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "you@example.com"}),
    )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip()
