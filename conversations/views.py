from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse


@login_required
def conversation_list_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("todo")
